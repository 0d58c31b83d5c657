//! MQTT on the wire: Eliot's packet vocabulary, the same for 3.1.1 and 5 (`packet`), and
//! the codec that frames it (`codec`), decoding with `decode` and encoding with `encode`
//! over rumqttc's packet structs.

pub mod codec;
mod decode;
mod encode;
pub mod packet;
mod properties;

pub use codec::{CodecError, MqttCodec, PartialSince};
