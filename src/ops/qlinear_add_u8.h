// The u8 + u8 -> u8 loop of QLinearAdd (what minnow's quantizer produces), shared with
// QLinearConv's fused residual Add. Compiled once per ISA level: the baseline build vectorizes
// it 16 bytes wide, AVX-512 four times that. Its file (ops/qlinear_add.cpp) is compiled with
// -ffp-contract=off (CMakeLists.txt) so that no ISA level fuses a * as + b * bs into an FMA:
// the result stays bit-identical to the reference kernel and to the QDQ graph.
#pragma once

#include <cstdint>

namespace minnow::ops {

struct AddU8 {  // a, b and y parameters as the loop needs them
  float as, bs, ys, azp, bzp, act_lo, act_hi, lo_f, hi_f, zp_f;
};

// y[i] = saturate(round_half_even(clamp((a[i] - azp) as + (b[i] - bzp) bs, act) / ys) + zp).
void add_u8(const AddU8& k, const uint8_t* __restrict a, const uint8_t* __restrict b,
            uint8_t* __restrict y, int64_t n);

}  // namespace minnow::ops
