# find_package(FlovynSdk) for an installed Flovyn C++ SDK: the imported target flovyn::flovyn_sdk
# (alias flovyn::sdk) and what it needs from the system (Debian: libgrpc++-dev,
# protobuf-compiler-grpc, nlohmann-json3-dev).
include(CMakeFindDependencyMacro)
find_dependency(Protobuf)
find_dependency(nlohmann_json)
find_package(PkgConfig REQUIRED)
pkg_check_modules(GRPCPP REQUIRED IMPORTED_TARGET grpc++)
pkg_check_modules(ABSL_SYNC REQUIRED IMPORTED_TARGET absl_synchronization)
include(${CMAKE_CURRENT_LIST_DIR}/FlovynSdkTargets.cmake)
if(NOT TARGET flovyn::sdk)
  add_library(flovyn::sdk INTERFACE IMPORTED)
  set_target_properties(flovyn::sdk PROPERTIES INTERFACE_LINK_LIBRARIES flovyn::flovyn_sdk)
endif()
