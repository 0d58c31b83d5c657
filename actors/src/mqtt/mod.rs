//! MQTT on the wire: Eliot's packet vocabulary and the codec that frames it.

pub mod codec;
pub mod packet;
