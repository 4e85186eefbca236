//! What a deployment asks of the sandbox: its limits (checked at deploy)
//! and the file system view of its processes.

use std::path::Path;

use faas_core::{Error, FunctionDeployment};
use faas_watchdog::sandbox::{bounds, View};
use faas_watchdog::Isolation;

/// A deployment's `limits`, checked.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Limits {
    /// Bytes, and the text the user wrote.
    pub(crate) memory: Option<(u64, String)>,
    /// Cores.
    pub(crate) cpu: Option<f64>,
}

/// Reads `limits.memory` (at least 4Mi) and `limits.cpu` (above 0, at most
/// the machine's cores), with the sandbox's own bounds; `requests` are
/// only recorded. Errors name the field.
pub(crate) fn limits(deployment: &FunctionDeployment) -> Result<Limits, Error> {
    let Some(limits) = &deployment.limits else { return Ok(Limits::default()) };
    let memory = match limits.memory.trim() {
        "" => None,
        text => Some(bounds::memory_limit("limits.memory", text)?),
    };
    let cpu = match limits.cpu.trim() {
        "" => None,
        text => Some(bounds::cpu_limit("limits.cpu", text)?),
    };
    Ok(Limits { memory, cpu })
}

/// The sandbox settings of a function whose working dir is `run_dir`
/// (holding its secrets in `secrets_dir`) under `state_dir`: its secrets at
/// `/var/openfaas/secrets`, the state dir hidden but for its own working
/// dir, `/` read-only when `readOnlyRootFilesystem` is set. The paths are
/// absolute (the provider makes its state dir so when it opens).
pub(crate) fn isolation(
    deployment: &FunctionDeployment,
    limits: Limits,
    state_dir: &Path,
    run_dir: &Path,
    secrets_dir: &Path,
) -> Isolation {
    let function = deployment.function_ref();
    Isolation {
        label: format!("{}.{}", function.name, function.namespace),
        view: View {
            secrets: Some(secrets_dir.to_path_buf()),
            read_only_root: deployment.read_only_root_filesystem,
            hidden: vec![state_dir.to_path_buf()],
            exposed: vec![run_dir.to_path_buf()],
        },
        memory: limits.memory,
        cpu: limits.cpu,
    }
}

#[cfg(test)]
mod tests {
    use faas_core::FunctionResources;

    use super::*;

    fn with_limits(memory: &str, cpu: &str) -> FunctionDeployment {
        FunctionDeployment {
            service: "f".into(),
            limits: Some(FunctionResources { memory: memory.into(), cpu: cpu.into() }),
            ..FunctionDeployment::default()
        }
    }

    fn invalid(result: Result<Limits, Error>) -> (String, String) {
        match result {
            Err(Error::Invalid { field, reason }) => (field, reason),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn limits_are_read_and_bounded() {
        let ok = limits(&with_limits("20Mi", "500m")).unwrap();
        assert_eq!(ok.memory, Some((20 << 20, "20Mi".to_owned())));
        assert_eq!(ok.cpu, Some(0.5));
        assert_eq!(limits(&with_limits("4Mi", "")).unwrap().memory, Some((4 << 20, "4Mi".to_owned())));
        assert_eq!(limits(&FunctionDeployment::default()).unwrap(), Limits::default());

        let (field, reason) = invalid(limits(&with_limits("3Mi", "")));
        assert_eq!((field.as_str(), reason.as_str()), ("limits.memory", "3Mi is below the minimum of 4Mi"));
        assert_eq!(invalid(limits(&with_limits("lots", ""))).0, "limits.memory");
        let (field, reason) = invalid(limits(&with_limits("", "0")));
        assert_eq!(field, "limits.cpu");
        assert!(reason.contains("more than 0"), "{reason}");
        let too_many = format!("{}", bounds::cores() + 1);
        let (field, reason) = invalid(limits(&with_limits("", &too_many)));
        assert_eq!(field, "limits.cpu");
        assert!(reason.contains("cores"), "{reason}");
    }
}
