// Deterministic weight initialisation shared by the layers that own weights.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>

namespace nl {

// Fills values with He-normal samples, N(0, 2/fan_in), from std::mt19937_64(seed).
// The normal transform is our own Box-Muller in double precision (not std::normal_distribution,
// whose algorithm differs between libstdc++ and libc++), so native and wasm builds initialise
// the same model with the same weights.
void fill_he_normal(std::span<float> values, size_t fan_in, uint64_t seed);

}  // namespace nl
