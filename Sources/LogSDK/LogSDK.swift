import Wire

/// LogSDK: the training-process side of logd.
///
/// It depends on Wire and the C library only (never libuv or libyaml; LogSDKTests checks).
/// The logging API arrives with its own issue; this file holds what both sides share now.
public enum LogSDK {
    /// Version reported in the HELLO handshake as `client_version`.
    public static let version = "0.1.0"
    /// Name reported in the HELLO handshake as `client_name`.
    public static let clientName = "logsdk-swift"
}
