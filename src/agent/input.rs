//! What the person sends: a [`Prompt`], text and images.

use crate::image::Image;

/// One prompt: its text (text blocks, embedded files) and the images attached to it. A `String`
/// or `&str` is a prompt without images.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Prompt {
    /// The text, as the model reads it.
    pub text: String,
    /// The images, in the order they were attached.
    pub images: Vec<Image>,
}

impl Prompt {
    /// A prompt of `text` and `images`.
    pub fn new(text: impl Into<String>, images: Vec<Image>) -> Self {
        Self {
            text: text.into(),
            images,
        }
    }
}

impl From<String> for Prompt {
    fn from(text: String) -> Self {
        Self {
            text,
            images: Vec::new(),
        }
    }
}

impl From<&str> for Prompt {
    fn from(text: &str) -> Self {
        Self::from(text.to_owned())
    }
}
