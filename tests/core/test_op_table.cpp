#include <gtest/gtest.h>

#include "core/op_registry.h"
#include "minnow/error.h"

namespace minnow {

TEST(OpTable, EveryRowMatchesItsKindAndName) {
  for (size_t i = 0; i < static_cast<size_t>(OpKind::kCount); ++i) {
    const OpDef& def = op_def(static_cast<OpKind>(i));
    EXPECT_EQ(static_cast<size_t>(def.kind), i);
    EXPECT_EQ(op_kind_from_name(def.name), def.kind);
    EXPECT_NE(def.infer, nullptr) << def.name;
    EXPECT_NE(def.reference, nullptr) << def.name;
  }
}

TEST(OpTable, UnknownNameIsAnError) { EXPECT_THROW(op_kind_from_name("NoSuchOp"), Error); }

}  // namespace minnow
