# Bad input to the compiler: one error line, exit 1, nothing left behind.
add_test(NAME bad_inputs COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/bad/run_bad.sh)
set_tests_properties(bad_inputs PROPERTIES LABELS bad
  ENVIRONMENT "QCC=$<TARGET_FILE:qcc>;SCRATCH=${CMAKE_BINARY_DIR}/bad-scratch")
