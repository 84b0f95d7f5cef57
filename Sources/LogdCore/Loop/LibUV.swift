import CLibUV
import LogdSystem

/// libuv's return codes, checked in one place: 0 or more is success, a negative value is a
/// negated errno. Every call that can fail goes through `check`, which names the call.
enum LibUV {
    /// Throws the failure of `call` as a `SystemError` (for set-up, where failing is fatal).
    static func check(_ rc: Int32, _ call: StaticString) throws(SystemError) {
        if rc < 0 { throw SystemError("\(call)", errno: -rc) }
    }

    /// Logs the failure of `call` once per kind and returns whether it succeeded.
    @discardableResult
    static func check(_ rc: Int32, _ call: StaticString, log: DaemonLog) -> Bool {
        guard rc < 0 else { return true }
        log.limited(.error, key: "uv-\(call)", "\(call): \(SystemError("\(call)", errno: -rc).description)")
        return false
    }
}
