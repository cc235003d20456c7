// Early return on a failed Status, in the manner of Abseil's: `RETURN_IF_ERROR(expr)` returns
// the Status of `expr` when it is not OK; `ASSIGN_OR_RETURN(decl, expr)` declares `decl` from
// the value of a StatusOr, or returns its Status. The enclosing function returns Status or a
// StatusOr. `ASSIGN_OR_RETURN_WITH(decl, expr, mapper)` returns `mapper(status)` instead, for
// functions that answer in another currency (an HTTP response).
#pragma once

#include "flovyn/core/status.h"

// NOLINTBEGIN(bugprone-macro-parentheses): `tmp` and `decl` are declarations, not expressions.
#define FLOVYN_STATUS_CONCAT_INNER(a, b) a##b
#define FLOVYN_STATUS_CONCAT(a, b) FLOVYN_STATUS_CONCAT_INNER(a, b)

#define FLOVYN_RETURN_IF_ERROR_IMPL(tmp, expr)       \
  do {                                               \
    ::flovyn::Status tmp = ::flovyn::StatusOf(expr); \
    if (!tmp.ok()) return tmp;                       \
  } while (false)

// (Each use gets its own name, so uses nested in a lambda inside another do not shadow.)
#define RETURN_IF_ERROR(expr) FLOVYN_RETURN_IF_ERROR_IMPL(FLOVYN_STATUS_CONCAT(flovyn_status_, __COUNTER__), expr)

#define FLOVYN_ASSIGN_OR_RETURN_IMPL(tmp, decl, expr, ...) \
  auto tmp = (expr);                                       \
  if (!tmp.ok()) return __VA_ARGS__(tmp.status());         \
  decl = std::move(*tmp)

#define ASSIGN_OR_RETURN(decl, expr) \
  FLOVYN_ASSIGN_OR_RETURN_IMPL(FLOVYN_STATUS_CONCAT(flovyn_statusor_, __COUNTER__), decl, expr, )

#define ASSIGN_OR_RETURN_WITH(decl, expr, mapper) \
  FLOVYN_ASSIGN_OR_RETURN_IMPL(FLOVYN_STATUS_CONCAT(flovyn_statusor_, __COUNTER__), decl, expr, mapper)
// NOLINTEND(bugprone-macro-parentheses)
