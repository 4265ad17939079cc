"""llama_cpp loads its shared libraries with ctypes from llama_cpp/lib: collect them there."""

from PyInstaller.utils.hooks import collect_data_files, collect_dynamic_libs

binaries = collect_dynamic_libs("llama_cpp")
datas = collect_data_files("llama_cpp")  # the bundled chat templates and server data
