# qcc --dummy-weights (docs/dummy-weights.md). gpu_hog (no CUDA headers:
# libcuda is dlopen'd) builds everywhere; dummy_cpu needs qcc (label e2e);
# dummy_gpu needs a GPU (label gpu: CI never runs it) and either qcc or the
# executables prebuilt elsewhere in QC_GPU_BINS (tests/dummy/gpu.sh).
add_executable(gpu_hog ${CMAKE_CURRENT_LIST_DIR}/gpu_hog.c)
qc_target(gpu_hog)
target_link_libraries(gpu_hog PRIVATE ${CMAKE_DL_LIBS})
if(QC_ENABLE_LLVM)
  add_test(NAME dummy_cpu COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/dummy.sh)
  set_tests_properties(dummy_cpu PROPERTIES LABELS e2e TIMEOUT 900
    ENVIRONMENT "QCC=$<TARGET_FILE:qcc>;DATA=${QC_DATA};SCRATCH=${CMAKE_BINARY_DIR}/dummy-scratch")
  set(QC_DUMMY_GPU_ENV "QCC=$<TARGET_FILE:qcc>")
else()
  set(QC_DUMMY_GPU_ENV "BINS=${QC_GPU_BINS}")
endif()
add_test(NAME dummy_gpu COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/gpu.sh)
set_tests_properties(dummy_gpu PROPERTIES LABELS gpu SKIP_RETURN_CODE 77 TIMEOUT 900
  ENVIRONMENT "${QC_DUMMY_GPU_ENV};HOG=$<TARGET_FILE:gpu_hog>;DATA=${QC_DATA};SCRATCH=${CMAKE_BINARY_DIR}/gpu-scratch")
