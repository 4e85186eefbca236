//! `FunctionRef::parse` / `parse_in`: the `name` or `name.namespace` of
//! invocation paths. Property: never a panic; a parsed reference prints
//! (`name.namespace`) and parses back to itself; errors name the part.
#![no_main]

use faas_core::validate;
use faas_core::FunctionRef;
use faas_fuzz::{expect_invalid, text};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let qualified = text(data);
    for parsed in [FunctionRef::parse(&qualified), FunctionRef::parse_in(&qualified, "team-a")] {
        match parsed {
            Ok(function) => {
                validate::function_name("name", &function.name).expect("a parsed name is a valid name");
                validate::namespace("namespace", &function.namespace).expect("a parsed namespace is valid");
                let printed = function.to_string();
                assert_eq!(FunctionRef::parse(&printed).expect("a printed reference parses"), function);
                assert!(qualified == function.name || qualified == printed, "{qualified:?} read as {printed:?}");
            }
            Err(err) => expect_invalid(&err, &["function name", "namespace"]),
        }
    }
});
