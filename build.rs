//! Makes the binaries find libtorch at run time with nothing exported by hand, and makes
//! CUDA builds really load libtorch_cuda.
//!
//! - An rpath to libtorch's `lib/` (from `LIBTORCH`, which `.cargo/config.toml` sets to the
//!   folder `scripts/setup_libtorch.sh` fills, or from Python's torch when
//!   `LIBTORCH_USE_PYTORCH` is set), so no `LD_LIBRARY_PATH` is needed.
//! - When that folder holds `libtorch_cuda.so`, link it with `--no-as-needed`: nothing in
//!   our code calls into it directly, so the linker would otherwise drop it and
//!   `tch::Cuda::is_available()` would silently be false (tch's known trap).
use std::path::PathBuf;
use std::process::Command;

fn torch_lib_dir() -> Option<PathBuf> {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-env-changed=LIBTORCH_LIB");
    println!("cargo:rerun-if-env-changed=LIBTORCH_USE_PYTORCH");
    if std::env::var_os("LIBTORCH_USE_PYTORCH").is_some() {
        let out = Command::new("python3")
            .args([
                "-c",
                "import os, torch; print(os.path.dirname(torch.__file__))",
            ])
            .output()
            .ok()
            .filter(|o| o.status.success())?;
        let torch = String::from_utf8(out.stdout).ok()?;
        let torch = torch.trim();
        // torch-sys explains a Python without torch; no shim is built against nothing
        return (!torch.is_empty()).then(|| PathBuf::from(torch).join("lib"));
    }
    if let Some(lib) = std::env::var_os("LIBTORCH_LIB") {
        return Some(PathBuf::from(lib).join("lib"));
    }
    std::env::var_os("LIBTORCH").map(|dir| PathBuf::from(dir).join("lib"))
}

fn main() {
    // set where src/shim.cpp is built with CUDA graphs
    println!("cargo:rustc-check-cfg=cfg(cuda_graphs)");
    let lib = torch_lib_dir();
    // Recorded in each run's config.json.
    let version = lib
        .as_ref()
        .and_then(|lib| std::fs::read_to_string(lib.join("../build-version")).ok())
        .unwrap_or_else(|| "2.11.0 (tch 0.24's check)".into());
    println!(
        "cargo:rustc-env=FASHION_TCH_LIBTORCH_VERSION={}",
        version.trim()
    );
    let Some(lib) = lib else {
        return; // torch-sys itself explains how to point it at libtorch
    };
    compile_shim(&lib);
    // Rebuild when the set-up script swaps the CPU layout for the CUDA one or back.
    println!("cargo:rerun-if-changed={}", lib.display());
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    if lib.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-L{}", lib.display());
        println!("cargo:rustc-link-arg=-ltorch_cuda");
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
    }
}

/// Compiles src/shim.cpp (what tch has no binding for) against libtorch's headers, with
/// the flags torch-sys compiles its own C++ with.
fn compile_shim(lib: &std::path::Path) {
    println!("cargo:rerun-if-changed=src/shim.cpp");
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    let root = lib.parent().unwrap_or(lib);
    let abi = if std::env::var_os("LIBTORCH_USE_PYTORCH").is_some() {
        python_cxx11_abi().unwrap_or_else(|| "1".into())
    } else {
        std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".into())
    };
    let mut build = cc::Build::new();
    // CUDA graphs, where libtorch is the CUDA layout and CUDA's headers are at hand: in
    // that layout (scripts/setup_libtorch.sh puts them there), else in a CUDA toolkit
    if lib.join("libtorch_cuda.so").exists() {
        println!("cargo:rerun-if-env-changed=CUDA_HOME");
        let toolkit = std::env::var_os("CUDA_HOME").map_or("/usr/local/cuda".into(), PathBuf::from);
        let headers = [root.join("include"), toolkit.join("include")]
            .into_iter()
            .find(|dir| {
                dir.join("cuda_runtime_api.h").exists() && dir.join("crt/host_config.h").exists()
            });
        match headers {
            Some(dir) => {
                build.include(dir).define("FASHION_TCH_CUDA", None);
                // the graph's streams are c10's CUDA half
                println!("cargo:rustc-link-lib=dylib=c10_cuda");
                println!("cargo:rustc-cfg=cuda_graphs");
            }
            None => println!(
                "cargo:warning=CUDA's headers (cuda_runtime_api.h, crt/host_config.h) are in neither {} nor {}: \
                 this build has no --cuda-graph; scripts/setup_libtorch.sh --device cuda installs them",
                root.join("include").display(),
                toolkit.join("include").display()
            ),
        }
    }
    build
        .cpp(true)
        .file("src/shim.cpp")
        .include(root.join("include"))
        .include(root.join("include/torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .flag("-DGLOG_USE_GLOG_EXPORT")
        // one call into libtorch per step: its speed is libtorch's, and -O1 without debug
        // info compiles the header-heavy file in a fraction of -O3's time
        .opt_level(1)
        .debug(false)
        .warnings(false)
        .compile("fashion_tch_shim");
}

/// Whether Python's torch was built with the C++11 ABI: "1" or "0".
fn python_cxx11_abi() -> Option<String> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))",
        ])
        .output()
        .ok()?;
    Some(String::from_utf8(out.stdout).ok()?.trim().to_string())
}
