// The UDP floor for bench/run.py: what answering costs when no DNS work is done at all. One thread,
// one socket, blocking recvmmsg in batches of 32 and sendmmsg of the same datagrams back with the
// header turned into a reply (QR and AA set, everything else as sent), as gdnsd's UDP threads do
// around their DNS work. The CPU time it uses per query is the kernel's and libc's share that any
// server pays on this machine; a server's figure above it is its own work.
//
// Usage: udp_floor ADDRESS PORT   (IPv4 only; runs until SIGTERM/SIGINT)
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

// As server/server.cc: 32 datagrams per call, buffers for the largest query accepted there.
constexpr int kBatch = 32;
constexpr size_t kMaxDatagram = 4096;

mmsghdr msgs[kBatch];
iovec iov[kBatch];
sockaddr_in peers[kBatch];
unsigned char bufs[kBatch][kMaxDatagram];

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s ADDRESS PORT\n", argv[0]);
    return 2;
  }
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(std::atoi(argv[2])));
  if (::inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1) {
    std::fprintf(stderr, "udp_floor: bad IPv4 address %s\n", argv[1]);
    return 2;
  }
  const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  // The same 4 MiB buffers as Meridian's sockets, so a burst is absorbed alike.
  const int size = 4 << 20;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    std::perror("udp_floor: bind");
    return 1;
  }
  // The default actions of SIGTERM/SIGINT end the process; nothing to clean up.
  for (;;) {
    for (int i = 0; i < kBatch; ++i) {
      iov[i] = iovec{bufs[i], kMaxDatagram};
      msgs[i].msg_hdr = msghdr{};
      msgs[i].msg_hdr.msg_name = &peers[i];
      msgs[i].msg_hdr.msg_namelen = sizeof peers[i];
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    // MSG_WAITFORONE: block for the first datagram only, then take what is queued (without it
    // recvmmsg waits for all kBatch).
    const int n = ::recvmmsg(fd, msgs, kBatch, MSG_WAITFORONE, nullptr);
    if (n < 0) {
      if (errno == EINTR) continue;
      std::perror("udp_floor: recvmmsg");
      return 1;
    }
    int m = 0;
    for (int i = 0; i < n; ++i) {
      const unsigned len = msgs[i].msg_len;
      if (len < 12 || (bufs[i][2] & 0x80) != 0) continue;  // not a query header
      bufs[i][2] |= 0x84;                                  // QR, AA
      iov[m] = iovec{bufs[i], len};
      msgs[m].msg_hdr.msg_name = &peers[i];
      msgs[m].msg_hdr.msg_namelen = msgs[i].msg_hdr.msg_namelen;
      msgs[m].msg_hdr.msg_iov = &iov[m];
      msgs[m].msg_hdr.msg_iovlen = 1;
      msgs[m].msg_hdr.msg_control = nullptr;
      msgs[m].msg_hdr.msg_controllen = 0;
      ++m;
    }
    for (int sent = 0; sent < m;) {
      const int r = ::sendmmsg(fd, msgs + sent, static_cast<unsigned>(m - sent), 0);
      if (r < 0 && errno == EINTR) continue;
      sent += r > 0 ? r : 1;  // a datagram that cannot go is lost, as UDP allows
    }
  }
}
