//! Docker's service templates in a container's hostname: `{{.Service.Name}}`,
//! `{{.Task.Slot}}`, `{{.Node.Hostname}}` and the rest of [`PLACEHOLDERS`]. The manager
//! checks a template when a service is created or updated; the worker expands it on the
//! node that runs the task (only there is the node known).

use crate::Task;

/// Every placeholder a template may use, in Docker's spelling.
pub const PLACEHOLDERS: [&str; 7] = [
    ".Service.ID",
    ".Service.Name",
    ".Task.ID",
    ".Task.Name",
    ".Task.Slot",
    ".Node.ID",
    ".Node.Hostname",
];

/// What the placeholders stand for on one node for one task.
#[derive(Debug, Clone, Default)]
pub struct TemplateValues<'a> {
    pub service_id: &'a str,
    pub service_name: &'a str,
    pub task_id: &'a str,
    /// `<service>.<slot>.<task id>`, as the container is named.
    pub task_name: &'a str,
    pub task_slot: String,
    pub node_id: &'a str,
    pub node_hostname: &'a str,
}

impl<'a> TemplateValues<'a> {
    /// The values for `task` on the node `node_id` named `node_hostname`; `task_name`
    /// is the task's container name. A global task's slot is its node id, as in Docker.
    pub fn of(
        task: &'a Task,
        task_name: &'a str,
        node_id: &'a str,
        node_hostname: &'a str,
    ) -> Self {
        let task_slot = match task.slot {
            0 => node_id.to_string(),
            slot => slot.to_string(),
        };
        TemplateValues {
            service_id: &task.service_id,
            service_name: &task.service_name,
            task_id: &task.id,
            task_name,
            task_slot,
            node_id,
            node_hostname,
        }
    }

    fn get(&self, placeholder: &str) -> Option<&str> {
        Some(match placeholder {
            ".Service.ID" => self.service_id,
            ".Service.Name" => self.service_name,
            ".Task.ID" => self.task_id,
            ".Task.Name" => self.task_name,
            ".Task.Slot" => &self.task_slot,
            ".Node.ID" => self.node_id,
            ".Node.Hostname" => self.node_hostname,
            _ => return None,
        })
    }
}

/// The template with every placeholder replaced; an error names what is wrong (an
/// unclosed `{{`, or a placeholder Docker has not).
pub fn expand(template: &str, values: &TemplateValues<'_>) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            return Err("a {{ is not closed with }}".to_string());
        };
        let placeholder = after[..close].trim();
        let value = values.get(placeholder).ok_or_else(|| {
            let shown: String = placeholder.chars().take(40).collect();
            format!(
                "unknown placeholder {{{{{shown}}}}}: use one of {}",
                PLACEHOLDERS.map(|p| format!("{{{{{p}}}}}")).join(", ")
            )
        })?;
        out.push_str(value);
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_known_placeholders_expand() {
        let task = Task {
            id: "t1".into(),
            service_id: "s1".into(),
            service_name: "web".into(),
            slot: 2,
            ..Default::default()
        };
        let values = TemplateValues::of(&task, "web.2.t1", "n1", "host-a");
        let got = expand(
            "{{.Service.Name}}-{{ .Task.Slot }}.{{.Node.Hostname}}",
            &values,
        );
        assert_eq!(got.unwrap(), "web-2.host-a");
        let all = expand(
            "{{.Service.ID}}{{.Task.ID}}{{.Task.Name}}{{.Node.ID}}",
            &values,
        );
        assert_eq!(all.unwrap(), "s1t1web.2.t1n1");
        assert_eq!(expand("plain", &values).unwrap(), "plain");
        let unknown = expand("{{.Node.Ip}}", &values).unwrap_err();
        assert!(
            unknown.starts_with("unknown placeholder {{.Node.Ip}}"),
            "{unknown}"
        );
        assert!(expand("a{{.Task.Slot", &values).is_err());
        let global = Task { slot: 0, ..task };
        let values = TemplateValues::of(&global, "web.n1.t1", "n1", "host-a");
        assert_eq!(expand("{{.Task.Slot}}", &values).unwrap(), "n1");
    }
}
