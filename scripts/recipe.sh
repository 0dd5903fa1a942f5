# The recipe of the shipped model, sourced by scripts/train (all the data) and
# scripts/cross-validate (the folds), so that the cross-validated figure is the shipped
# recipe's. Changing any of these changes the model, and a checkpoint made with other options
# is refused by --resume. 30 epochs of all 5,708 images are 5,340 steps, about the 5,680 of
# the earlier 40-epoch recipe on 80% of them.
RECIPE=(
  --arch resnet-s --input-size 160 --crop head
  --epochs 30 --batch 32 --lr 0.002 --min-lr 0.00001 --warmup 1
  --weight-decay 0.05 --label-smoothing 0.1
  --seed 1 --bn-recalibration 2048 --weights f16
)

# Builds the native CLI if needed: build/native, or NEUROLENS_BUILD_DIR configured by the
# same preset. Sets BUILD.
build_cli() {
  BUILD=${NEUROLENS_BUILD_DIR:-build/native}
  if [[ ! -f $BUILD/build.ninja ]]; then
    [[ -d build/deps/xnnpack ]] || scripts/setup
    cmake --preset native -B "$BUILD"
  fi
  if [[ $BUILD -ef build/native ]]; then
    cmake --build --preset native -j "${NEUROLENS_JOBS:-2}" --target neurolens
  else
    cmake --build "$BUILD" -j "${NEUROLENS_JOBS:-2}" --target neurolens
  fi
}
