/* A tiny UDP peer for network tests (busybox's nc has no UDP):
 *   udpecho serve PORT          answer each datagram with "udp:" + its payload
 *   udpecho send IP PORT TEXT   send TEXT, print the answer (exit 1 after 3 s without one)
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET};
    char buffer[512];
    if (fd < 0 || argc < 3) return 2;
    if (strcmp(argv[1], "serve") == 0) {
        addr.sin_port = htons(atoi(argv[2]));
        if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) { perror("bind"); return 1; }
        for (;;) {
            struct sockaddr_in peer;
            socklen_t len = sizeof peer;
            ssize_t n = recvfrom(fd, buffer + 4, sizeof buffer - 4, 0, (struct sockaddr *)&peer, &len);
            if (n < 0) continue;
            memcpy(buffer, "udp:", 4);
            sendto(fd, buffer, n + 4, 0, (struct sockaddr *)&peer, len);
        }
    }
    if (argc < 5) return 2;
    struct timeval timeout = {.tv_sec = 3};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    addr.sin_port = htons(atoi(argv[3]));
    inet_pton(AF_INET, argv[2], &addr.sin_addr);
    sendto(fd, argv[4], strlen(argv[4]), 0, (struct sockaddr *)&addr, sizeof addr);
    ssize_t n = recv(fd, buffer, sizeof buffer - 1, 0);
    if (n < 0) { perror("recv"); return 1; }
    buffer[n] = 0;
    printf("%s\n", buffer);
    return 0;
}
