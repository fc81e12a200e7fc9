/* Docker's json-file log driver: one JSON object per line, rotated by size. */
#ifndef DOCKYARD_JSONLOG_H
#define DOCKYARD_JSONLOG_H

#include <stddef.h>

/* A line longer than this is split into several entries, as Docker does. */
#define JSONLOG_MAX_LINE (16 * 1024)
/* "2026-11-23T16:00:00.123456789Z" and its terminating NUL. */
#define TIMESTAMP_SIZE 32

enum log_stream { LOG_STDOUT = 0, LOG_STDERR = 1 };

struct json_log {
    const char *path;
    int fd;
    long long size;
    long long max_size; /* 0: never rotate */
    int max_file;
    size_t pending_len[2];
    char pending[2][JSONLOG_MAX_LINE]; /* the partial line of each stream */
};

/* RFC 3339 with nanoseconds in UTC, as Docker writes it. */
void format_timestamp(char out[TIMESTAMP_SIZE]);

int json_log_open(struct json_log *log, const char *path, long long max_size, int max_file);
void json_log_write(struct json_log *log, enum log_stream stream, const char *data, size_t len);
/* Writes what is left of partial lines, then closes the file. */
void json_log_close(struct json_log *log);

#endif
