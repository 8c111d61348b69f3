//! What the person sends: a [`Prompt`], text and images, and the blocks it came as.

use serde::{Deserialize, Serialize};

use crate::image::Image;

/// One prompt: its text (text blocks, embedded files) and the images attached to it. A `String`
/// or `&str` is a prompt without images.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Prompt {
    /// The text, as the model reads it.
    pub text: String,
    /// The images, in the order they were attached.
    pub images: Vec<Image>,
    /// The prompt as the person sent it, block by block (the editor's content blocks), which
    /// a loaded session shows again; empty when `text` is all there was.
    pub blocks: Vec<PromptBlock>,
}

impl Prompt {
    /// A prompt of `text` and `images`.
    pub fn new(text: impl Into<String>, images: Vec<Image>) -> Self {
        Self {
            text: text.into(),
            images,
            blocks: Vec::new(),
        }
    }

    /// The same prompt, sent by the person as `blocks`.
    #[must_use]
    pub fn with_blocks(mut self, blocks: Vec<PromptBlock>) -> Self {
        self.blocks = blocks;
        self
    }

    /// What the person sent: [`blocks`](Self::blocks), or when there are none the text and
    /// then each image.
    pub fn sent(&self) -> Vec<PromptBlock> {
        if !self.blocks.is_empty() {
            return self.blocks.clone();
        }
        sent_as_text(&self.text, &self.images)
    }
}

/// The blocks of a prompt known only by its text and images (older journals, prompts from the
/// library or `punie ask`): the text, then each image.
pub(crate) fn sent_as_text(text: &str, images: &[Image]) -> Vec<PromptBlock> {
    let mut blocks = vec![PromptBlock::Text {
        text: text.to_owned(),
    }];
    blocks.extend(
        images
            .iter()
            .enumerate()
            .map(|(index, image)| PromptBlock::Image {
                image: Some(index),
                mime_type: image.mime_type.clone(),
                uri: None,
            }),
    );
    blocks
}

/// The text the person typed in `blocks`: the text blocks, one a line.
pub(crate) fn typed_text(blocks: &[PromptBlock]) -> String {
    let texts: Vec<&str> = blocks
        .iter()
        .filter_map(|b| match b {
            PromptBlock::Text { text } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    texts.join("\n")
}

/// One block of a prompt as the person sent it, as the journal keeps it (`specs/sessions.md`).
/// An image's data is not repeated here: the block names the prompt's image it became.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum PromptBlock {
    /// Text, as typed (a slash command as typed, not what it expanded to).
    Text {
        /// The text.
        text: String,
    },
    /// An image.
    Image {
        /// Which of the prompt's images it is; `None` for an image given only by its URI
        /// (the model was not sent it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        image: Option<usize>,
        /// Its MIME type.
        mime_type: String,
        /// Where it came from, if the editor said.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        uri: Option<String>,
    },
    /// A link to a file or other resource (the model was told its path).
    ResourceLink {
        /// The resource.
        uri: String,
        /// Its name.
        name: String,
        /// Its title, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        title: Option<String>,
        /// Its description, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
        /// Its MIME type, if known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mime_type: Option<String>,
        /// Its size in bytes, if known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        size: Option<i64>,
    },
    /// A resource embedded in the prompt (a file's text). A binary one keeps only its URI:
    /// its bytes never reached the model and are not kept.
    Resource {
        /// The resource.
        uri: String,
        /// Its MIME type, if known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mime_type: Option<String>,
        /// Its text; `None` for a binary resource.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
    },
}

impl From<String> for Prompt {
    fn from(text: String) -> Self {
        Self::new(text, Vec::new())
    }
}

impl From<&str> for Prompt {
    fn from(text: &str) -> Self {
        Self::from(text.to_owned())
    }
}
