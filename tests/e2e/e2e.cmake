# End-to-end: qcc compiles the real stories260K checkpoint; the executables
# are checked against the reference values in ../shared/data.
set(QC_E2E_ENV "QCC=$<TARGET_FILE:qcc>;DATA=${QC_DATA};SCRATCH=${CMAKE_BINARY_DIR}/e2e-scratch")
function(qc_e2e name script)
  add_test(NAME ${name} COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/e2e/${script} ${ARGN})
  set_tests_properties(${name} PROPERTIES LABELS e2e ENVIRONMENT "${QC_E2E_ENV}" TIMEOUT 900)
endfunction()
qc_e2e(e2e_greedy greedy.sh)
qc_e2e(e2e_ppl_f32 perplexity.sh 32 0.05)
qc_e2e(e2e_ppl_f16 perplexity.sh 16 0.3)
qc_e2e(e2e_standalone standalone.sh)
qc_e2e(e2e_repro repro.sh)
qc_e2e(e2e_integrity integrity.sh)
qc_e2e(e2e_quant quant.sh)
