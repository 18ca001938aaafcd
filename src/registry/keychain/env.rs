//! The environment the credential sources read: variables and the machine's
//! DMI identity, captured once so a test can give its own.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// Environment variables and the DMI directory (`/sys/class/dmi/id`).
#[derive(Clone, Debug, Default)]
pub struct Environment {
    vars: BTreeMap<String, String>,
    dmi_dir: Option<PathBuf>,
}

impl Environment {
    /// The process environment and the machine's DMI directory.
    pub fn process() -> Self {
        Environment {
            vars: std::env::vars().collect(),
            dmi_dir: Some(PathBuf::from("/sys/class/dmi/id")),
        }
    }

    /// Exactly these variables, and no DMI identity.
    pub fn from_vars<K: Into<String>, V: Into<String>>(vars: impl IntoIterator<Item = (K, V)>) -> Self {
        Environment {
            vars: vars.into_iter().map(|(k, v)| (k.into(), v.into())).collect(),
            dmi_dir: None,
        }
    }

    /// The variable `name`, when set and not empty.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }

    /// Every variable (a kubelet plugin inherits them, as from the kubelet).
    pub fn vars(&self) -> &BTreeMap<String, String> {
        &self.vars
    }

    /// The trimmed content of DMI file `name` (`sys_vendor`, `product_name`).
    pub fn dmi(&self, name: &str) -> Option<String> {
        let dir = self.dmi_dir.as_ref()?;
        std::fs::read_to_string(dir.join(name))
            .ok()
            .map(|s| s.trim().to_string())
    }
}
