//! `faas_core::validate::quantity_value`: resource quantities (`128Mi`,
//! `500m`, `0.5`) in Kubernetes' notation.
//!
//! Two inputs, chosen by the first byte: any text (never a panic; a value
//! is finite and not negative; a refusal is `Invalid` naming the field),
//! or a quantity built from parts, printed and read back to the value the
//! parts make.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use faas_core::validate::{quantity, quantity_value, QUANTITY_SUFFIXES};
use faas_fuzz::{expect_invalid, text};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Parts {
    whole: u32,
    fraction: Option<u16>,
    suffix: Option<u8>,
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    if mode % 2 == 0 {
        let input = text(rest);
        match quantity_value("limits.memory", &input) {
            Ok(value) => {
                assert!(value.is_finite() && value >= 0.0, "{input:?} gave {value}");
                quantity("limits.memory", &input).expect("quantity agrees with quantity_value");
            }
            Err(err) => expect_invalid(&err, &["limits.memory"]),
        }
        return;
    }
    let Ok(parts) = Parts::arbitrary(&mut Unstructured::new(rest)) else { return };
    let (suffix, factor) = match parts.suffix {
        Some(i) => QUANTITY_SUFFIXES[usize::from(i) % QUANTITY_SUFFIXES.len()],
        None => ("", 1.0),
    };
    let (printed, number) = match parts.fraction {
        Some(f) => (format!("{}.{f}{suffix}", parts.whole), format!("{}.{f}", parts.whole).parse::<f64>().unwrap()),
        None => (format!("{}{suffix}", parts.whole), f64::from(parts.whole)),
    };
    let value = quantity_value("requests.cpu", &printed).unwrap_or_else(|e| panic!("{printed:?} refused: {e}"));
    let expected = number * factor;
    assert!((value - expected).abs() <= expected.abs() * 1e-12, "{printed:?} read as {value}, not {expected}");
});
