//! [`ConfigError`]: one clear message naming the file, the line and the key.

use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: Option<PathBuf>,
    pub line: Option<usize>,
    pub key: Option<String>,
    pub message: String,
    /// The offending line as written, shown under the message.
    pub source_line: Option<String>,
}

impl ConfigError {
    pub fn plain(file: Option<&Path>, message: String) -> Self {
        ConfigError {
            file: file.map(Path::to_path_buf),
            line: None,
            key: None,
            message,
            source_line: None,
        }
    }

    /// An error at byte `offset` of `text`, about `key`.
    pub fn at(file: Option<&Path>, text: &str, offset: usize, key: &str, message: String) -> Self {
        let (line, source_line) = line_of(text, offset);
        ConfigError {
            file: file.map(Path::to_path_buf),
            line: Some(line),
            key: Some(key.to_string()),
            message,
            source_line: Some(source_line),
        }
    }

    /// A TOML syntax or type error. The key is read off the line the parser points at.
    pub fn from_toml(file: &Path, text: &str, e: &toml::de::Error) -> Self {
        let Some(span) = e.span() else {
            return ConfigError::plain(Some(file), e.message().to_string());
        };
        let (line, source_line) = line_of(text, span.start);
        let key = source_line
            .split_once('=')
            .map(|(k, _)| k.trim().to_string())
            .or_else(|| {
                let t = source_line.trim();
                t.starts_with('[')
                    .then(|| t.trim_matches(['[', ']']).to_string())
            })
            .filter(|k| !k.is_empty());
        ConfigError {
            file: Some(file.to_path_buf()),
            line: Some(line),
            key,
            message: e.message().trim().to_string(),
            source_line: Some(source_line),
        }
    }
}

fn line_of(text: &str, offset: usize) -> (usize, String) {
    let offset = offset.min(text.len());
    let line = text[..offset].matches('\n').count() + 1;
    let start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    (line, text[start..end].trim_end().to_string())
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("config")?;
        if let Some(file) = &self.file {
            write!(f, " {}", file.display())?;
        }
        if let Some(line) = self.line {
            write!(f, " line {line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ", key `{key}`")?;
        }
        write!(f, ": {}", self.message)?;
        if let (Some(line), Some(src)) = (self.line, &self.source_line) {
            write!(f, "\n  {line:>4} | {src}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}
