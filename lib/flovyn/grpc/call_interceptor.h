// The interceptor every gRPC call passes through: it answers unparseable requests as
// INVALID_ARGUMENT, counts and times calls by method and status code, and keeps the count of
// live calls the drain waits on.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <set>
#include <string>

#include <grpcpp/support/server_interceptor.h>

namespace flovyn::metrics {
class Registry;
}

namespace flovyn::grpcsvc {

// `methods` are the full paths the server implements (others are labelled "other"); `live`
// counts calls from their first interceptor hook until they are done. `metrics` may be null.
std::unique_ptr<::grpc::experimental::ServerInterceptorFactoryInterface> NewCallInterceptorFactory(
    metrics::Registry* metrics, std::set<std::string> methods, std::atomic<int64_t>& live);

}  // namespace flovyn::grpcsvc
