//! The bounds of the limits a function may ask for, checked the same way
//! wherever they are written (a deployment's `limits`, `fwatchdog`'s
//! `memory_limit` and `cpu_limit`). Errors name the field.

use faas_core::{validate, Error};

/// The smallest memory limit a function may ask for: below it even a
/// shell cannot start.
pub const MIN_MEMORY: u64 = 4 << 20;

/// The cores this process may use: the largest CPU limit.
pub fn cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// Reads a memory limit (a quantity such as `20Mi`, at least 4Mi) written
/// in `field`: its bytes, and the text as written (for messages).
pub fn memory_limit(field: &str, text: &str) -> Result<(u64, String), Error> {
    let text = text.trim();
    let bytes = validate::quantity_value(field, text)?;
    if bytes < MIN_MEMORY as f64 {
        return Err(Error::invalid(field, format!("{text} is below the minimum of 4Mi")));
    }
    Ok((bytes.min(u64::MAX as f64) as u64, text.to_owned()))
}

/// Reads a CPU limit in cores (`0.5`, `500m`) written in `field`: above 0
/// and at most this machine's cores.
pub fn cpu_limit(field: &str, text: &str) -> Result<f64, Error> {
    let text = text.trim();
    let asked = validate::quantity_value(field, text)?;
    let cores = cores();
    if asked <= 0.0 {
        return Err(Error::invalid(field, format!("{text} is no CPU at all; give more than 0")));
    }
    if asked > cores as f64 {
        return Err(Error::invalid(field, format!("{text} is more than this machine's {cores} cores")));
    }
    Ok(asked)
}
