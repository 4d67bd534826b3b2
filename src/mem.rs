//! The process's memory: giving freed heap memory back to the operating system after a large,
//! short-lived job (a bulk import). `crier serve` also tunes glibc malloc at start-up
//! (`tune_malloc` in src/cli/mod.rs).

/// Returns the heap's free pages to the operating system. glibc only gives back the free memory
/// at the top of its heap on its own; free pages between live allocations (a finished import's,
/// among sled's pages) stay resident until `malloc_trim` hands them back. It takes a few
/// milliseconds on a heap of a few hundred MiB, so it is for the end of large jobs only.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn release_free_memory() {
    extern "C" {
        fn malloc_trim(pad: usize) -> std::os::raw::c_int;
    }
    // SAFETY: malloc_trim takes no pointers and only releases memory malloc itself holds free;
    // it is documented as safe to call at any time from any thread (it takes the arena locks).
    unsafe {
        malloc_trim(0);
    }
}

/// Other allocators give free memory back on their own terms.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn release_free_memory() {}
