#include "flovyn/db/sqlstate.h"

#include <gtest/gtest.h>

namespace flovyn::db {
namespace {

TEST(SqlStateTest, ConnectionAndTransientFailuresAreRetryable) {
  for (const char* s : {"08000", "08006", "08001", "40001", "40P01", "57P01", "57P03", "53300", "55P03"}) {
    EXPECT_TRUE(IsRetryable(s)) << s;
  }
  for (const char* s : {"23505", "42601", "22P02", "42P01", "57014", "XX000", ""}) {
    EXPECT_FALSE(IsRetryable(s)) << s;
  }
}

TEST(SqlStateTest, StatusCodesAreCanonical) {
  EXPECT_EQ(StatusFromSqlState("23505", "dup").code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(StatusFromSqlState("23503", "fk").code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(StatusFromSqlState("22P02", "bad").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(StatusFromSqlState("40001", "ser").code(), StatusCode::kAborted);
  EXPECT_EQ(StatusFromSqlState("57P01", "down").code(), StatusCode::kUnavailable);
  EXPECT_EQ(StatusFromSqlState("57014", "cancel").code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(StatusFromSqlState("42601", "syntax").code(), StatusCode::kInternal);
}

TEST(StatusTest, MappedOnceToHttpAndGrpc) {
  EXPECT_EQ(HttpStatusFor(StatusCode::kInvalidArgument), 400);
  EXPECT_EQ(HttpStatusFor(StatusCode::kUnauthenticated), 401);
  EXPECT_EQ(HttpStatusFor(StatusCode::kPermissionDenied), 403);
  EXPECT_EQ(HttpStatusFor(StatusCode::kNotFound), 404);
  EXPECT_EQ(HttpStatusFor(StatusCode::kAlreadyExists), 409);
  EXPECT_EQ(HttpStatusFor(StatusCode::kPayloadTooLarge), 413);
  EXPECT_EQ(HttpStatusFor(StatusCode::kUnavailable), 503);
  EXPECT_EQ(GrpcCodeFor(StatusCode::kInvalidArgument), 3);
  EXPECT_EQ(GrpcCodeFor(StatusCode::kAborted), 10);
  EXPECT_EQ(GrpcCodeFor(StatusCode::kUnavailable), 14);
  EXPECT_EQ(GrpcCodeFor(StatusCode::kUnauthenticated), 16);
}

}  // namespace
}  // namespace flovyn::db
