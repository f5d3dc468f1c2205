//! The `velu-cli` binary: a runtime, then [`velu_cli::run`] with real stdout and stderr.
//!
//! Its allocator is jemalloc, purging freed memory on a background thread of its own
//! rather than inside the requests that free it. glibc's malloc took about 15% of the
//! machine under a job list; side by side jemalloc served 1.14x to 1.29x the reads, with
//! the list's p99 1.5 to 2.6 ms shorter (docs/benchmarks-log.md, "jemalloc as velu-cli's
//! allocator"). Without the background thread the shortest requests' tails grew, as
//! they did with mimalloc.

use std::process::ExitCode;

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read by jemalloc itself at its start (the prefixed build's
/// `malloc_conf`): freed pages are returned to the system by jemalloc's own background
/// thread. `_RJEM_MALLOC_CONF` in the environment still overrides it.
#[unsafe(export_name = "_rjem_malloc_conf")]
static MALLOC_CONF: MallocConf = MallocConf(c"background_thread:true".as_ptr());

/// A C string pointer, as jemalloc's `const char *malloc_conf` is.
#[repr(transparent)]
struct MallocConf(*const std::ffi::c_char);

// SAFETY: the pointer is to a static, never written.
unsafe impl Sync for MallocConf {}

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error[internal]: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let code = runtime.block_on(velu_cli::run_main(
        std::env::args_os(),
        &mut std::io::stdout(),
        &mut std::io::stderr(),
    ));
    ExitCode::from(code)
}

#[cfg(test)]
mod tests {
    /// The options above reach jemalloc: it starts its background purging thread (named
    /// `jemalloc_bg_thd`) once it allocates.
    #[test]
    fn jemalloc_runs_its_background_thread() {
        let kept: Vec<Vec<u8>> = (0..1_000).map(|n| vec![0u8; 4096 + n]).collect();
        drop(kept);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let names: Vec<String> = std::fs::read_dir("/proc/self/task")
                .expect("tasks")
                .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
                .collect();
            if names.iter().any(|n| n.trim() == "jemalloc_bg_thd") {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no jemalloc background thread: {names:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}
