//! The injected view of "where am I": home, APPDATA, working directory,
//! environment variables and OS family.
//!
//! Every path the client code touches is derived from an [`Env`], so tests
//! build one pointing at a temp dir and never see the real home directory or
//! process environment. [`Env::from_process`] is the only place that reads
//! the real ones.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// OS family, which decides where Claude Desktop and VS Code keep settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Os {
    MacOs,
    Linux,
    Windows,
}

impl Os {
    /// The OS this binary was built for.
    pub fn current() -> Os {
        if cfg!(target_os = "macos") {
            Os::MacOs
        } else if cfg!(windows) {
            Os::Windows
        } else {
            Os::Linux
        }
    }
}

/// Everything the client code may know about its surroundings.
#[derive(Debug, Clone)]
pub struct Env {
    pub os: Os,
    /// User home directory; without it only project files are looked at.
    pub home: Option<PathBuf>,
    /// `%APPDATA%` on Windows (Roaming); defaults to `home\AppData\Roaming`.
    pub appdata: Option<PathBuf>,
    /// Project directory for project-scoped configs (`.mcp.json`, …).
    pub cwd: PathBuf,
    /// Environment variables (only `MCP_SERVER_*` and `XDG_CONFIG_HOME` are used).
    pub vars: BTreeMap<String, String>,
}

impl Env {
    /// An environment with nothing but a home and a project directory.
    pub fn new(os: Os, home: impl Into<PathBuf>, cwd: impl Into<PathBuf>) -> Env {
        Env {
            os,
            home: Some(home.into()),
            appdata: None,
            cwd: cwd.into(),
            vars: BTreeMap::new(),
        }
    }

    /// Reads the real process environment. Nothing else in this module does.
    pub fn from_process() -> Env {
        let vars: BTreeMap<String, String> = std::env::vars().collect();
        let home = vars
            .get("HOME")
            .or_else(|| vars.get("USERPROFILE"))
            .filter(|h| !h.is_empty())
            .map(PathBuf::from);
        let appdata = vars
            .get("APPDATA")
            .filter(|a| !a.is_empty())
            .map(PathBuf::from);
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        Env {
            os: Os::current(),
            home,
            appdata,
            cwd,
            vars,
        }
    }

    /// `%APPDATA%`, falling back to its usual place under the home directory.
    pub fn appdata_dir(&self) -> Option<PathBuf> {
        self.appdata.clone().or_else(|| {
            self.home
                .as_ref()
                .map(|h| h.join("AppData").join("Roaming"))
        })
    }

    /// `$XDG_CONFIG_HOME`, or `~/.config` (Linux only).
    pub fn xdg_config_dir(&self) -> Option<PathBuf> {
        match self.vars.get("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
            Some(dir) => Some(PathBuf::from(dir)),
            None => self.home.as_ref().map(|h| h.join(".config")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appdata_and_xdg_fallbacks() {
        let mut env = Env::new(Os::Windows, "/h", "/p");
        assert_eq!(env.appdata_dir(), Some(PathBuf::from("/h/AppData/Roaming")));
        env.appdata = Some(PathBuf::from("/ad"));
        assert_eq!(env.appdata_dir(), Some(PathBuf::from("/ad")));
        assert_eq!(env.xdg_config_dir(), Some(PathBuf::from("/h/.config")));
        env.vars.insert("XDG_CONFIG_HOME".into(), "/x".into());
        assert_eq!(env.xdg_config_dir(), Some(PathBuf::from("/x")));
    }
}
