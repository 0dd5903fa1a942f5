# The libraries that read what scanners write, built from the pinned sources scripts/setup
# unpacks into build/deps/ (cmake/deps.lock): GDCM 3.0.24 (DICOM, with its own IJG JPEG 8/12/16,
# CharLS, OpenJPEG and RLE codecs), nifti_clib 3.0.1 (NIfTI-1/2 headers) and zlib 1.3.1 (.nii.gz,
# and GDCM's deflated transfer syntax: one zlib for both).
#
# Provides the targets neurolens_zlib, neurolens_nifti and gdcmMSFF. Include this before
# -msimd128 is added to the directory's compile options: the DICOM/NIfTI module of the page runs
# in browsers without SIMD too.

foreach(_dep gdcm nifticlib zlib)
  if(NOT EXISTS "${NEUROLENS_DEPS_DIR}/${_dep}/.neurolens-stamp")
    message(FATAL_ERROR "${NEUROLENS_DEPS_DIR}/${_dep} is missing: run scripts/setup first")
  endif()
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
               "${NEUROLENS_DEPS_DIR}/${_dep}/.neurolens-stamp")
endforeach()

# Third-party C: built with its own defaults, without our warnings (-w).
set(_zlib "${NEUROLENS_DEPS_DIR}/zlib")
add_library(neurolens_zlib STATIC
  ${_zlib}/adler32.c ${_zlib}/compress.c ${_zlib}/crc32.c ${_zlib}/deflate.c ${_zlib}/gzclose.c
  ${_zlib}/gzlib.c ${_zlib}/gzread.c ${_zlib}/gzwrite.c ${_zlib}/infback.c ${_zlib}/inffast.c
  ${_zlib}/inflate.c ${_zlib}/inftrees.c ${_zlib}/trees.c ${_zlib}/uncompr.c ${_zlib}/zutil.c)
target_include_directories(neurolens_zlib SYSTEM PUBLIC "${_zlib}")
target_compile_definitions(neurolens_zlib PRIVATE HAVE_UNISTD_H HAVE_STDARG_H)
target_compile_options(neurolens_zlib PRIVATE -w)

set(_nifti "${NEUROLENS_DEPS_DIR}/nifticlib")
add_library(neurolens_nifti STATIC ${_nifti}/nifti2/nifti2_io.c ${_nifti}/znzlib/znzlib.c)
target_include_directories(neurolens_nifti SYSTEM PUBLIC "${_nifti}/nifti2" "${_nifti}/znzlib")
target_compile_definitions(neurolens_nifti PUBLIC HAVE_ZLIB)
target_compile_options(neurolens_nifti PRIVATE -w)
target_link_libraries(neurolens_nifti PUBLIC neurolens_zlib m)

# GDCM finds zlib with find_package(ZLIB): answer it with ours through CMake's package
# redirection directory instead of a system library.
file(WRITE "${CMAKE_FIND_PACKAGE_REDIRECTS_DIR}/zlib-config.cmake"
"set(ZLIB_FOUND TRUE)
set(ZLIB_INCLUDE_DIR \"${_zlib}\")
set(ZLIB_INCLUDE_DIRS \"${_zlib}\")
set(ZLIB_LIBRARIES neurolens_zlib)
set(ZLIB_LIBRARY neurolens_zlib)
set(ZLIB_VERSION_STRING 1.3.1)
")

# GDCM embedded the way ITK embeds it (GDCM_TARGETS_NAME set: no tests, examples or install
# exports). Everything it can bring itself (JPEG, CharLS, OpenJPEG, expat, uuid) comes from its
# own Utilities/, except zlib. A function keeps these settings out of our own scope.
function(neurolens_add_gdcm)
  set(GDCM_TARGETS_NAME NeuroLensGDCM)
  set(BUILD_SHARED_LIBS OFF)
  set(GDCM_BUILD_SHARED_LIBS OFF CACHE BOOL "" FORCE)
  set(GDCM_BUILD_APPLICATIONS OFF CACHE BOOL "" FORCE)
  set(GDCM_BUILD_DOCBOOK_MANPAGES OFF CACHE BOOL "" FORCE)
  set(GDCM_DOCUMENTATION OFF CACHE BOOL "" FORCE)
  set(GDCM_USE_VTK OFF CACHE BOOL "" FORCE)
  set(GDCM_USE_JPEGLS ON CACHE BOOL "" FORCE)
  set(GDCM_USE_SYSTEM_ZLIB ON CACHE BOOL "" FORCE)
  foreach(_lib OPENSSL UUID EXPAT JSON PAPYRUS3 SOCKETXX LJPEG OPENJPEG CHARLS POPPLER LIBXML2)
    set(GDCM_USE_SYSTEM_${_lib} OFF CACHE BOOL "" FORCE)
  endforeach()
  foreach(_wrap PYTHON PERL PHP JAVA CSHARP)
    set(GDCM_WRAP_${_wrap} OFF CACHE BOOL "" FORCE)
  endforeach()
  # GDCM's bundled OpenJPEG puts EXECUTABLE/LIBRARY_OUTPUT_PATH in the cache, from a variable
  # that is empty when embedded ("/bin"), and the cache is seen by every directory: pin them
  # to GDCM's own folder while it configures, and drop them again afterwards.
  set(EXECUTABLE_OUTPUT_PATH "${CMAKE_BINARY_DIR}/_deps/gdcm/bin" CACHE PATH "" FORCE)
  set(LIBRARY_OUTPUT_PATH "${CMAKE_BINARY_DIR}/_deps/gdcm/bin" CACHE PATH "" FORCE)
  if(EMSCRIPTEN)
    # GDCM catches its own exceptions while it parses (e.g. to retry a JPEG with the 12-bit
    # codec); without -fexceptions Emscripten would abort on the first throw.
    set(CMAKE_CXX_FLAGS "${CMAKE_CXX_FLAGS} -fexceptions")
  endif()
  set(CMAKE_C_FLAGS "${CMAKE_C_FLAGS} -w")
  set(CMAKE_CXX_FLAGS "${CMAKE_CXX_FLAGS} -w")
  add_subdirectory("${NEUROLENS_DEPS_DIR}/gdcm" "${CMAKE_BINARY_DIR}/_deps/gdcm" EXCLUDE_FROM_ALL SYSTEM)
  unset(EXECUTABLE_OUTPUT_PATH CACHE)
  unset(LIBRARY_OUTPUT_PATH CACHE)
endfunction()
neurolens_add_gdcm()

if(NOT TARGET gdcmMSFF)
  message(FATAL_ERROR "GDCM's CMake did not define the gdcmMSFF target")
endif()
# Embedded, GDCM gives its targets no usage requirements: its headers live per module, plus
# the generated gdcmConfigure.h.
set(_gdcm "${NEUROLENS_DEPS_DIR}/gdcm/Source")
target_include_directories(gdcmMSFF SYSTEM INTERFACE
  "${_gdcm}/Common" "${CMAKE_BINARY_DIR}/_deps/gdcm/Source/Common"
  "${_gdcm}/DataStructureAndEncodingDefinition" "${_gdcm}/DataDictionary"
  "${_gdcm}/InformationObjectDefinition" "${_gdcm}/MediaStorageAndFileFormat")
