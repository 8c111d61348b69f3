//! Images: what the person attaches to a prompt and what an MCP tool returns, kept as the
//! base64 text they arrived in and sent to a model that can see as a `data:` URL.
//!
//! A leaf module: the conversation (`llm`), tool results (`workspace`, `tools`) and the agent
//! all carry [`Image`]s, and it imports none of them.
//!
//! Every image is bounded: [`MAX_IMAGE_BYTES`] each, and [`MAX_PROMPT_IMAGES`] /
//! [`MAX_PROMPT_IMAGE_BYTES`] for all the images of one prompt or of one tool result. The
//! bounds keep a prompt's journal record (images included) under the journal's record limit.

/// The most bytes (decoded) one image may have.
pub const MAX_IMAGE_BYTES: usize = 5 * 1024 * 1024;

/// The most images one prompt (or one tool result) may carry.
pub const MAX_PROMPT_IMAGES: usize = 8;

/// The most bytes (decoded) all the images of one prompt (or one tool result) may have.
pub const MAX_PROMPT_IMAGE_BYTES: usize = 10 * 1024 * 1024;

/// The context tokens an image is assumed to take before the server has counted it (vision
/// encoders of local models use a few hundred to a couple of thousand per image).
pub const IMAGE_TOKENS: u32 = 1024;

/// One image: its MIME type and its bytes as base64 text (the session journal stores it as is).
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Image {
    /// The MIME type, e.g. `image/png`.
    pub mime_type: String,
    /// The bytes, base64-encoded (standard alphabet, as ACP and MCP send them).
    pub data: String,
}

impl std::fmt::Debug for Image {
    /// The type and size, never the data (it can be megabytes).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Image")
            .field("mime_type", &self.mime_type)
            .field("bytes", &self.byte_len())
            .finish()
    }
}

impl Image {
    /// An image of `mime_type` whose bytes are the base64 text `data`.
    pub fn new(mime_type: impl Into<String>, data: impl Into<String>) -> Self {
        Self {
            mime_type: mime_type.into(),
            data: data.into(),
        }
    }

    /// The decoded size in bytes, computed from the base64 text without decoding it.
    pub fn byte_len(&self) -> usize {
        decoded_len(&self.data)
    }

    /// The image as a `data:` URL (`data:<mimeType>;base64,<data>`), as OpenAI-compatible
    /// servers take it in an `image_url` content part.
    pub fn data_url(&self) -> String {
        format!("data:{};base64,{}", self.mime_type, self.data.trim())
    }

    /// A short note standing for the image where it cannot be shown, e.g.
    /// `[image: image/png, 3 bytes]`.
    pub fn placeholder(&self) -> String {
        format!("[image: {}, {} bytes]", self.mime_type, self.byte_len())
    }
}

/// The decoded size of base64 text, without decoding it.
pub fn decoded_len(data: &str) -> usize {
    let data = data.trim_end();
    let padding = data.bytes().rev().take_while(|&b| b == b'=').count();
    (data.len() / 4 * 3 + (data.len() % 4).saturating_sub(1)).saturating_sub(padding)
}

/// Why a set of images is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    /// One image is larger than [`MAX_IMAGE_BYTES`].
    #[error(
        "image {index} is {bytes} bytes; Punie takes images of at most {limit} bytes ({} MiB): \
         scale it down or crop it and attach it again",
        limit / (1024 * 1024)
    )]
    TooLarge {
        /// Which image (1-based, in the prompt's order).
        index: usize,
        /// Its decoded size.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// More than [`MAX_PROMPT_IMAGES`] images.
    #[error(
        "{count} images in one prompt; Punie takes at most {limit}: send the rest in a later prompt"
    )]
    TooMany {
        /// How many there were.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// All the images together are larger than [`MAX_PROMPT_IMAGE_BYTES`].
    #[error(
        "the prompt's images are {bytes} bytes together; Punie takes at most {limit} bytes ({} MiB) \
         of images per prompt: send fewer or smaller images",
        limit / (1024 * 1024)
    )]
    TooMuch {
        /// Their decoded size.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// A MIME type that is not an image's.
    #[error(
        "image {index} has the MIME type {mime_type:?}; an image's must start with image/ (e.g. image/png)"
    )]
    NotAnImage {
        /// Which image (1-based).
        index: usize,
        /// Its MIME type.
        mime_type: String,
    },
    /// Data that is not base64 text.
    #[error(
        "image {index} is not base64 data (a character outside the base64 alphabet at byte {at})"
    )]
    NotBase64 {
        /// Which image (1-based).
        index: usize,
        /// Where the first bad character is.
        at: usize,
    },
}

/// Checks `images` against the bounds: each at most [`MAX_IMAGE_BYTES`], at most
/// [`MAX_PROMPT_IMAGES`] of them and [`MAX_PROMPT_IMAGE_BYTES`] together, each with an
/// `image/` MIME type and base64 data.
pub fn check_images(images: &[Image]) -> Result<(), ImageError> {
    if images.len() > MAX_PROMPT_IMAGES {
        return Err(ImageError::TooMany {
            count: images.len(),
            limit: MAX_PROMPT_IMAGES,
        });
    }
    let mut total = 0;
    for (i, image) in images.iter().enumerate() {
        let index = i + 1;
        if !image.mime_type.starts_with("image/") {
            return Err(ImageError::NotAnImage {
                index,
                mime_type: image.mime_type.clone(),
            });
        }
        if let Some(at) = image
            .data
            .trim()
            .bytes()
            .position(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=')))
        {
            return Err(ImageError::NotBase64 { index, at });
        }
        let bytes = image.byte_len();
        if bytes > MAX_IMAGE_BYTES {
            return Err(ImageError::TooLarge {
                index,
                bytes,
                limit: MAX_IMAGE_BYTES,
            });
        }
        total += bytes;
    }
    if total > MAX_PROMPT_IMAGE_BYTES {
        return Err(ImageError::TooMuch {
            bytes: total,
            limit: MAX_PROMPT_IMAGE_BYTES,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_data_urls_and_placeholders() {
        let image = Image::new("image/png", "YWJj");
        assert_eq!(image.byte_len(), 3);
        assert_eq!(Image::new("image/png", "YWI=").byte_len(), 2);
        assert_eq!(image.data_url(), "data:image/png;base64,YWJj");
        assert_eq!(image.placeholder(), "[image: image/png, 3 bytes]");
        assert!(!format!("{image:?}").contains("YWJj"));
    }

    #[test]
    fn bounds_are_checked_with_numbers() {
        assert_eq!(check_images(&[Image::new("image/png", "YWJj")]), Ok(()));
        let big = Image::new("image/png", "A".repeat((MAX_IMAGE_BYTES / 3 + 1) * 4));
        let error = check_images(&[big]).unwrap_err();
        assert!(matches!(error, ImageError::TooLarge { index: 1, .. }));
        assert!(
            error.to_string().contains("at most 5242880 bytes (5 MiB)"),
            "{error}"
        );
        let many = vec![Image::new("image/png", "YWJj"); MAX_PROMPT_IMAGES + 1];
        assert_eq!(
            check_images(&many).unwrap_err().to_string(),
            "9 images in one prompt; Punie takes at most 8: send the rest in a later prompt"
        );
        let four_mib = Image::new("image/png", "A".repeat(4 * 1024 * 1024 / 3 * 4));
        let error = check_images(&[four_mib.clone(), four_mib.clone(), four_mib]).unwrap_err();
        assert!(matches!(error, ImageError::TooMuch { .. }), "{error}");
        assert!(matches!(
            check_images(&[Image::new("text/plain", "YWJj")]),
            Err(ImageError::NotAnImage { index: 1, .. })
        ));
        assert!(matches!(
            check_images(&[Image::new("image/png", "YW Jj")]),
            Err(ImageError::NotBase64 { index: 1, at: 2 })
        ));
    }
}
