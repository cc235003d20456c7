// The runtime's services: how modules find each other's collaborators by type.
#include <gtest/gtest.h>

#include "flovyn/runtime/module.h"

namespace flovyn::runtime {
namespace {

struct Clock {
  int now = 0;
};
struct Ledger {
  int entries = 0;
};

TEST(ServicesTest, AModuleFindsWhatAnEarlierOneProvidedByTypeAndNothingElse) {
  Services services;
  EXPECT_EQ(services.Find<Clock>(), nullptr) << "nothing provided yet";
  Clock clock{42};
  services.Provide(clock);
  ASSERT_EQ(services.Find<Clock>(), &clock);
  EXPECT_EQ(services.Find<Clock>()->now, 42);
  EXPECT_EQ(services.Find<Ledger>(), nullptr) << "another type is not found by accident";
  Clock replacement{7};
  services.Provide(replacement);
  EXPECT_EQ(services.Find<Clock>(), &replacement) << "the latest provider wins";
}

}  // namespace
}  // namespace flovyn::runtime
