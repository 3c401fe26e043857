//! The engine configuration: its one definition, shared by the runtime and by `host/build.rs`,
//! which precompiles the built-in components with it so the binary carries their native code.
//!
//! Native code runs only in an engine configured exactly like the one that compiled it (wasmtime
//! refuses anything else), so every engine cove makes, at build time or at run time, comes from
//! [`config`]. Must not depend on anything but wasmtime and std: build.rs includes this file with
//! `#[path]`, and changing a setting here changes the compatibility hash of every cached artifact.

use wasmtime::{Config, Enabled, InstanceAllocationStrategy, PoolingAllocationConfig};

/// The configuration of every cove engine: components, epoch interruption (deadlines and
/// cancellation), and the pooling allocator sized for one agent's plugins plus their ready spares.
///
/// When a store is dropped, the pages its call wrote (up to 64 KiB of them, found with Linux's
/// `PAGEMAP_SCAN` where the kernel has it) are reset in place rather than unmapped, so the next
/// instance of the same component in that slot does not page-fault on its stack and heap during
/// its call: at a few microseconds a fault in a VM, that is most of a trivial call's cost.
pub fn config() -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true).epoch_interruption(true);
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(64)
        .total_core_instances(640)
        .total_memories(128)
        .total_tables(256)
        // Fibers' stacks (wasmtime's async support is compiled in, cove calls synchronously):
        // the default pool of 1000 costs a mapping and a guard page each at every start.
        .total_stacks(64)
        .linear_memory_keep_resident(64 << 10)
        .table_keep_resident(16 << 10)
        .pagemap_scan(Enabled::Auto);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    config
}
