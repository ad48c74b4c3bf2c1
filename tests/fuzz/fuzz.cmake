# tests/fuzz — libFuzzer targets for every parser of untrusted input, and
# their corpora replayed in every ctest run (STYLE.md habit 13).
#
#   fuzz_replay_<t>   (always) replay.c + fuzz_<t>.c, linked to the normal
#                     libraries; ctest `fuzz_<t>` (label fuzz) runs it over
#                     tests/fuzz/corpus/<t>/. Sanitized in QC_SANITIZE builds.
#   fuzz_<t>          (QC_FUZZ=ON, clang only) the libFuzzer binary, linked
#                     to the same libraries, which this build compiles with
#                     -fsanitize=fuzzer-no-link,address,undefined so coverage
#                     reaches inside them. `make fuzz` configures build-fuzz
#                     this way and runs each for FUZZ_SECONDS (docs/fuzzing.md).
#   fuzz_mkblob       (always) tokenizer.json -> blob, to make tok_blob seeds.
option(QC_FUZZ "Build the libFuzzer targets (needs CMAKE_C_COMPILER=clang)" OFF)

set(QC_FUZZ_DIR ${CMAKE_CURRENT_LIST_DIR})

# Per target: the libraries it exercises.
set(QC_FUZZ_TARGETS json safetensors config tokenizer_json tok_blob prompt)
set(QC_FUZZ_LIB_json qc_frontend)
set(QC_FUZZ_LIB_config qc_frontend)
set(QC_FUZZ_LIB_safetensors qc_frontend)
set(QC_FUZZ_LIB_tokenizer_json qc_frontend qrt_dev)
set(QC_FUZZ_LIB_tok_blob qrt_dev)
set(QC_FUZZ_LIB_prompt qc_frontend qrt_dev)
# GGUF, when the frontend library has the reader.
get_target_property(qc_fuzz_fe_src qc_frontend SOURCES)
if("gguf.c" IN_LIST qc_fuzz_fe_src AND "gguf_meta.c" IN_LIST qc_fuzz_fe_src)
  list(APPEND QC_FUZZ_TARGETS gguf)
  set(QC_FUZZ_LIB_gguf qc_frontend qrt_dev)
endif()

foreach(t ${QC_FUZZ_TARGETS})
  add_executable(fuzz_replay_${t} ${QC_FUZZ_DIR}/replay.c ${QC_FUZZ_DIR}/fuzz_${t}.c)
  qc_target(fuzz_replay_${t})
  target_compile_definitions(fuzz_replay_${t} PRIVATE QC_DATA="${QC_DATA}" QC_TESTS_DIR="${QC_TESTS_DIR}")
  target_link_libraries(fuzz_replay_${t} PRIVATE ${QC_FUZZ_LIB_${t}})
  add_test(NAME fuzz_${t} COMMAND fuzz_replay_${t} ${QC_FUZZ_DIR}/corpus/${t})
  set_tests_properties(fuzz_${t} PROPERTIES LABELS fuzz TIMEOUT 300)
endforeach()

add_executable(fuzz_mkblob ${QC_FUZZ_DIR}/mkblob.c)
qc_target(fuzz_mkblob)
target_link_libraries(fuzz_mkblob PRIVATE qc_frontend)

if(QC_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "QC_FUZZ=ON needs clang (libFuzzer): cmake -DCMAKE_C_COMPILER=clang -DQC_FUZZ=ON")
  endif()
  # QC_FUZZ_EXTRA_FLAGS: e.g. -fno-sanitize=nonnull-attribute, to fuzz past a
  # known finding until it is fixed (a separate build dir; never committed).
  set(QC_FUZZ_EXTRA_FLAGS "" CACHE STRING "Extra flags for the QC_FUZZ build (after the sanitizer flags)")
  separate_arguments(qc_fuzz_extra UNIX_COMMAND "${QC_FUZZ_EXTRA_FLAGS}")
  set(QC_FUZZ_SAN -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
                  ${qc_fuzz_extra})
  # The libraries under test: coverage-instrumented, sanitized; whatever
  # links them (fuzz and replay binaries alike) links the sanitizer runtimes.
  foreach(lib qc_frontend qrt_dev)
    target_compile_options(${lib} PRIVATE -fsanitize=fuzzer-no-link ${QC_FUZZ_SAN} -g -O1)
    target_link_options(${lib} INTERFACE ${QC_FUZZ_SAN})
  endforeach()
  add_custom_target(fuzz_all) # what `make fuzz` builds
  foreach(t ${QC_FUZZ_TARGETS})
    add_executable(fuzz_${t} ${QC_FUZZ_DIR}/fuzz_${t}.c)
    add_dependencies(fuzz_all fuzz_${t})
    qc_target(fuzz_${t} NOSAN)
    target_compile_definitions(fuzz_${t} PRIVATE QC_DATA="${QC_DATA}" QC_TESTS_DIR="${QC_TESTS_DIR}")
    target_compile_options(fuzz_${t} PRIVATE -fsanitize=fuzzer ${QC_FUZZ_SAN} -g -O1)
    target_link_options(fuzz_${t} PRIVATE -fsanitize=fuzzer ${QC_FUZZ_SAN})
    target_link_libraries(fuzz_${t} PRIVATE ${QC_FUZZ_LIB_${t}})
  endforeach()
endif()
