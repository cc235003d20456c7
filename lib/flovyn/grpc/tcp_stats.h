// Per-connection TCP counters from the kernel (TCP_INFO), kept apart from <netinet/tcp.h>.
#pragma once

#include <cstdint>

namespace flovyn::grpcsvc {

// Bytes the peer has sent on the connection so far; 0 when unknown.
uint64_t BytesReceived(int fd);

}  // namespace flovyn::grpcsvc
