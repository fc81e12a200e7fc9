/* Docker's json-file format:
 *
 *   {"log":"hello\n","stream":"stdout","time":"2026-11-23T16:00:00.123456789Z"}
 *
 * Output is cut into entries at newlines and every JSONLOG_MAX_LINE bytes; what the container
 * wrote without a final newline is written when the stream closes. Bytes that are not UTF-8
 * become U+FFFD, so that every line is valid JSON.
 */
#define _GNU_SOURCE
#include "jsonlog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *const stream_names[2] = {"stdout", "stderr"};

void format_timestamp(char out[TIMESTAMP_SIZE])
{
    struct timespec now;
    struct tm utc;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &utc);
    size_t n = strftime(out, TIMESTAMP_SIZE, "%Y-%m-%dT%H:%M:%S", &utc);
    snprintf(out + n, TIMESTAMP_SIZE - n, ".%09ldZ", now.tv_nsec);
}

/* Length of the valid UTF-8 sequence at s (at most len bytes), or 0 if it is not one. */
static size_t utf8_sequence(const unsigned char *s, size_t len)
{
    unsigned char c = s[0];
    size_t need;
    unsigned int min, code;
    if (c >= 0xc2 && c <= 0xdf) {
        need = 2, min = 0x80, code = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 3, min = 0x800, code = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 4, min = 0x10000, code = c & 0x07;
    } else {
        return 0;
    }
    if (len < need)
        return 0;
    for (size_t i = 1; i < need; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        code = (code << 6) | (s[i] & 0x3f);
    }
    if (code < min || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff))
        return 0;
    return need;
}

/* JSON string contents for len bytes; out holds at least 6 * len bytes. */
static size_t json_escape(char *out, const char *data, size_t len)
{
    const unsigned char *s = (const unsigned char *)data;
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        unsigned char c = s[i];
        if (c >= 0x80) {
            size_t n = utf8_sequence(s + i, len - i);
            if (n) {
                memcpy(out + o, s + i, n);
                o += n, i += n;
            } else {
                memcpy(out + o, "\\ufffd", 6);
                o += 6, i += 1;
            }
            continue;
        }
        i++;
        switch (c) {
        case '"': memcpy(out + o, "\\\"", 2), o += 2; break;
        case '\\': memcpy(out + o, "\\\\", 2), o += 2; break;
        case '\n': memcpy(out + o, "\\n", 2), o += 2; break;
        case '\r': memcpy(out + o, "\\r", 2), o += 2; break;
        case '\t': memcpy(out + o, "\\t", 2), o += 2; break;
        default:
            if (c < 0x20)
                o += (size_t)sprintf(out + o, "\\u%04x", c);
            else
                out[o++] = (char)c;
        }
    }
    return o;
}

static int write_all(int fd, const char *data, size_t len)
{
    while (len) {
        ssize_t n = write(fd, data, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        data += n, len -= (size_t)n;
    }
    return 0;
}

int json_log_open(struct json_log *log, const char *path, long long max_size, int max_file)
{
    log->path = path;
    log->max_size = max_size;
    log->max_file = max_file < 1 ? 1 : max_file;
    log->pending_len[0] = log->pending_len[1] = 0;
    log->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (log->fd < 0)
        return -1;
    log->size = lseek(log->fd, 0, SEEK_END);
    return 0;
}

static void rotate(struct json_log *log)
{
    char older[4096], newer[4096];
    close(log->fd);
    if (log->max_file == 1) {
        truncate(log->path, 0);
    } else {
        for (int index = log->max_file - 1; index > 0; index--) {
            snprintf(older, sizeof older, "%s.%d", log->path, index);
            if (index == 1)
                snprintf(newer, sizeof newer, "%s", log->path);
            else
                snprintf(newer, sizeof newer, "%s.%d", log->path, index - 1);
            rename(newer, older); /* ENOENT: that file does not exist yet */
        }
    }
    log->fd = open(log->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    log->size = 0;
}

static void write_entry(struct json_log *log, enum log_stream stream, const char *data, size_t len)
{
    /* Worst case: every byte escaped as \u00XX. Static: only the pages used are touched. */
    static char line[6 * JSONLOG_MAX_LINE + 128];
    char time[TIMESTAMP_SIZE];
    size_t n = 0;
    format_timestamp(time);
    memcpy(line, "{\"log\":\"", 8), n = 8;
    n += json_escape(line + n, data, len);
    n += (size_t)snprintf(line + n, sizeof line - n, "\",\"stream\":\"%s\",\"time\":\"%s\"}\n",
                          stream_names[stream], time);
    if (log->max_size && log->size > 0 && log->size + (long long)n > log->max_size)
        rotate(log);
    if (log->fd >= 0 && write_all(log->fd, line, n) == 0)
        log->size += (long long)n;
}

void json_log_write(struct json_log *log, enum log_stream stream, const char *data, size_t len)
{
    char *pending = log->pending[stream];
    size_t *pending_len = &log->pending_len[stream];
    while (len) {
        size_t take = JSONLOG_MAX_LINE - *pending_len;
        if (take > len)
            take = len;
        const char *newline = memchr(data, '\n', take);
        if (newline)
            take = (size_t)(newline - data) + 1;
        memcpy(pending + *pending_len, data, take);
        *pending_len += take;
        data += take, len -= take;
        if (newline || *pending_len == JSONLOG_MAX_LINE) {
            write_entry(log, stream, pending, *pending_len);
            *pending_len = 0;
        }
    }
}

void json_log_close(struct json_log *log)
{
    for (int stream = LOG_STDOUT; stream <= LOG_STDERR; stream++) {
        if (log->pending_len[stream])
            write_entry(log, (enum log_stream)stream, log->pending[stream],
                        log->pending_len[stream]);
        log->pending_len[stream] = 0;
    }
    if (log->fd >= 0)
        close(log->fd);
    log->fd = -1;
}
