//! Labels of the container spec's enums, as Docker spells them.

use crate::MountType;

impl MountType {
    pub fn label(self) -> &'static str {
        match self {
            MountType::Bind => "bind",
            MountType::Volume => "volume",
            MountType::Tmpfs => "tmpfs",
        }
    }
}
