#include "train/batches.h"

#include <algorithm>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/rng.h"
#include "formats/image.h"

namespace nl {

void make_batch(Runtime& rt, const Model& model, const Dataset& data, std::span<const size_t> items,
                const AugmentOptions* augment, uint64_t seed, size_t epoch, Tensor& input) {
  const Architecture& arch = model.architecture();
  if (arch.width != data.width() || arch.height != data.height())
    throw std::invalid_argument("make_batch: the model takes " + std::to_string(arch.width) +
                                "x" + std::to_string(arch.height) + " images, the data holds " +
                                std::to_string(data.width()) + "x" + std::to_string(data.height()));
  for (size_t i : items)
    if (i >= data.size())
      throw std::invalid_argument("make_batch: item " + std::to_string(i) + " is outside the " +
                                  std::to_string(data.size()) + " images");
  input.reshape({items.size(), arch.height, arch.width, arch.channels});
  float* const batch = input.data();
  const size_t pixels = data.width() * data.height();
  std::vector<GreyImage> slots(items.size());
  try {
    parallel_for(rt, items.size(), [&](size_t k) {
      const size_t item = items[k];
      GreyImage& slot = slots[k];
      slot.width = data.width();
      slot.height = data.height();
      slot.pixels.resize(pixels);
      if (augment) {
        Rng rng(derive_seed(seed, {0xA06ull, epoch, item}));
        const AugmentParams p = sample_augment(*augment, data.width(), data.height(), rng);
        augment_image(data.image(item), data.width(), data.height(), p, slot.pixels.data());
      } else {
        std::copy(data.image(item), data.image(item) + pixels, slot.pixels.begin());
      }
      to_input(slot, arch, model.preprocessing(), batch + k * pixels * arch.channels);
    });
  } catch (const std::exception& e) {
    throw std::invalid_argument(std::string("make_batch: ") + e.what());
  }
}

// Mixup: image i becomes mix*x_i + (1-mix)*x_{n-1-i} (pairs swap, so no copy is needed).
void mix_with_reversed(Tensor& batch, double mix) {
  const size_t n = batch.dim(0), per = batch.size() / n;
  const float a = static_cast<float>(mix), b = static_cast<float>(1.0 - mix);
  for (size_t i = 0; i < n / 2; ++i) {
    float* x = batch.data() + i * per;
    float* y = batch.data() + (n - 1 - i) * per;
    for (size_t k = 0; k < per; ++k) {
      const float xi = x[k], yi = y[k];
      x[k] = a * xi + b * yi;
      y[k] = a * yi + b * xi;
    }
  }
}

void check_model_fits(const Model& model, const Dataset& data, const char* what) {
  if (model.classes() != data.classes()) {
    auto list = [](const std::vector<std::string>& v) {
      std::string s;
      for (const std::string& c : v) s += (s.empty() ? "" : ", ") + c;
      return s;
    };
    throw std::invalid_argument(std::string(what) + ": the model's classes (" +
                                list(model.classes()) + ") differ from the data's (" +
                                list(data.classes()) + ")");
  }
  const Architecture& a = model.architecture();
  if (a.width != data.width() || a.height != data.height())
    throw std::invalid_argument(std::string(what) + ": the model takes " +
                                std::to_string(a.width) + "x" + std::to_string(a.height) +
                                " images but the data was loaded at " +
                                std::to_string(data.width()) + "x" + std::to_string(data.height()));
  if (model.preprocessing().crop_to_head != data.crop_to_head())
    throw std::invalid_argument(std::string(what) + ": the model " +
                                (model.preprocessing().crop_to_head ? "crops" : "does not crop") +
                                " images to the head but the data was loaded " +
                                (data.crop_to_head() ? "cropped" : "uncropped"));
}

}  // namespace nl
