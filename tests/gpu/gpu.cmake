# GPU tests (label gpu; CI never runs them): need an NVIDIA GPU and driver,
# skip (77) without one. test_cuda_kernels builds here without LLVM; the
# whole-model tests compile stories260K with qcc when it is built, else run
# executables compiled elsewhere from QC_GPU_BINS (see tests/gpu/lib.sh).
set(QC_GPU_BINS "${CMAKE_SOURCE_DIR}/carry/bins" CACHE PATH "prebuilt stories260K executables for the GPU tests")
qc_c_test(test_cuda_kernels ${CMAKE_CURRENT_LIST_DIR}/test_cuda_kernels.c gpu qc_cuda qrt_dev m)
target_include_directories(test_cuda_kernels PRIVATE ${CMAKE_SOURCE_DIR}/runtime)
set_tests_properties(test_cuda_kernels PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 900)
if(QC_ENABLE_LLVM)
  set(QC_GPU_ENV "QCC=$<TARGET_FILE:qcc>;DATA=${QC_DATA};SCRATCH=${CMAKE_BINARY_DIR}/gpu-scratch")
else()
  set(QC_GPU_ENV "BINS=${QC_GPU_BINS};DATA=${QC_DATA};SCRATCH=${CMAKE_BINARY_DIR}/gpu-scratch")
endif()
foreach(t greedy ppl)
  add_test(NAME gpu_${t} COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/${t}.sh)
  set_tests_properties(gpu_${t} PROPERTIES LABELS gpu ENVIRONMENT "${QC_GPU_ENV}" SKIP_RETURN_CODE 77 TIMEOUT 900)
endforeach()
