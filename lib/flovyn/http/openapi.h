// An OpenAPI 3 document generated from the route table that serves the requests, so the
// document lists exactly what the server answers.
#pragma once

#include <string>

#include "flovyn/http/router.h"

namespace flovyn::http {

// Every route whose pattern starts with `prefix`.
std::string OpenApiDocument(const Router& router, const std::string& prefix, const std::string& title,
                            const std::string& version);

}  // namespace flovyn::http
