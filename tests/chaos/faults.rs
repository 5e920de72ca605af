//! The faults: a gateway killed with SIGKILL, Garage killed and restarted,
//! a full filesystem under the audit log, a policy swapped every 100 ms.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::common::Garage;

pub fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args([sig, &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

/// A small tmpfs mounted for the audit log, unmounted when dropped. For
/// root, permissions do not stop writes (and `chattr` needs ext4): a full
/// filesystem does (ENOSPC).
pub struct Tmpfs {
    pub dir: PathBuf,
}

impl Tmpfs {
    /// None when mounting is not possible here (not root, no CAP_SYS_ADMIN).
    pub fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs {
            dir: dir.to_path_buf(),
        })
    }

    fn filler(&self) -> PathBuf {
        self.dir.join("filler")
    }

    /// Fill the filesystem until a write fails (ENOSPC).
    pub fn fill(&self) {
        let mut f = std::fs::File::create(self.filler()).expect("filler");
        let chunk = vec![0u8; 4096];
        while f.write_all(&chunk).is_ok() {}
    }

    pub fn free(&self) {
        let _ = std::fs::remove_file(self.filler());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// Garage, killed and started again on the same ports and data.
pub struct GarageRestarts {
    pub restarted: Option<Child>,
}

impl GarageRestarts {
    pub fn kill(&mut self, g: &Garage) {
        match &mut self.restarted {
            Some(c) => {
                let _ = c.kill();
                let _ = c.wait();
            }
            None => signal(g.pid, "-9"),
        }
    }

    pub fn start(&mut self, g: &Garage, log: &Path) {
        let log = std::fs::File::create(log).expect("garage log");
        let child = Command::new(&g.bin)
            .args(["-c", &g.config, "server"])
            .env("RUST_LOG", "garage=warn")
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("restart garage");
        self.restarted = Some(child);
    }
}

impl Drop for GarageRestarts {
    fn drop(&mut self) {
        if let Some(c) = &mut self.restarted {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Two policy versions, each of two files, in a Kubernetes ConfigMap
/// layout (`..a/`, `..b/`, `..data` → one of them, `base.yaml` →
/// `..data/base.yaml`). Version B also denies bob's reads: a request's
/// answer tells which version decided it.
pub const BASE_A: &str = r#"Version: "2012-10-17"
Statement:
  - Sid: EveryoneWorks
    Effect: Allow
    Principal: "*"
    Action: "s3:*"
    Resource: "*"
  - Sid: OnlyInitiator
    Effect: Deny
    Principal: "*"
    Action: [s3:AbortMultipartUpload, s3:PutObject, s3:ListMultipartUploadParts]
    Resource: arn:aws:s3:::chaos/*
    Condition:
      "Null": { s3gate:MultipartInitiator: "false" }
      StringNotEquals: { s3gate:MultipartInitiator: self }
"#;

pub const BOB_NO_READS: &str = r#"  - Sid: BobMayNotRead
    Effect: Deny
    Principal: bob
    Action: s3:GetObject
    Resource: arn:aws:s3:::chaos/*
"#;

fn extra(version: &str) -> String {
    format!(
        "Version: \"2012-10-17\"\nStatement:\n  - Sid: Marker{version}\n    Effect: Deny\n    Principal: \"*\"\n    Action: s3:GetObjectTagging\n    Resource: arn:aws:s3:::chaos/marker-{version}\n"
    )
}

pub fn write_policies(dir: &Path) {
    for (v, base) in [
        ("a", BASE_A.to_string()),
        ("b", format!("{BASE_A}{BOB_NO_READS}")),
    ] {
        let d = dir.join(format!("..{v}"));
        std::fs::create_dir_all(&d).expect("mkdir");
        std::fs::write(d.join("base.yaml"), base).expect("write");
        std::fs::write(d.join("extra.yaml"), extra(v)).expect("write");
    }
    swap(dir, "a");
    for f in ["base.yaml", "extra.yaml"] {
        std::os::unix::fs::symlink(format!("..data/{f}"), dir.join(f)).expect("link");
    }
}

/// Point `..data` at version `v` atomically (rename of a new symlink).
pub fn swap(dir: &Path, v: &str) {
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(format!("..{v}"), &tmp).expect("symlink");
    std::fs::rename(&tmp, dir.join("..data")).expect("swap");
}
