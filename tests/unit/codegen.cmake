# Codegen unit tests (needs LLVM). test_codegen links the objects it emits
# against a stand-in runtime built here (never sanitized: the executables
# it makes must need nothing but libc, like real outputs).
if(QC_ENABLE_LLVM)
  add_library(qc_test_fakert STATIC ${CMAKE_CURRENT_LIST_DIR}/test_codegen_rt.c)
  qc_target(qc_test_fakert NOSAN)
  set_target_properties(qc_test_fakert PROPERTIES POSITION_INDEPENDENT_CODE ON)
  qc_c_test(test_codegen ${CMAKE_CURRENT_LIST_DIR}/test_codegen.c unit qc_codegen qc_frontend)
  target_compile_definitions(test_codegen PRIVATE QC_TEST_FAKERT="$<TARGET_FILE:qc_test_fakert>")
  add_dependencies(test_codegen qc_test_fakert)
endif()
