import Wire

/// TensorBoard's `Event` records, encoded by hand (see `Proto`). Field numbers are those of
/// tensorboard/compat/proto/{event,summary,tensor,tensor_shape,types}.proto and
/// tensorboard/plugins/hparams/plugin_data.proto.
///
/// Scalars are `simple_value` (float32): the one form both of TensorBoard's loaders read. Its
/// default Rust data server holds every scalar as float32 and drops a DT_DOUBLE tensor summary as
/// data loss (tensorboard/data/server/data_compat.rs), so a double would show nowhere; the exact
/// double stays in metrics.csv.
public enum TensorBoardEvent {
    public static let fileVersion = "brain.Event:2"

    /// `Event{wall_time, file_version}`: the first record of every event file.
    public static func fileVersionEvent(wallTime: Double) -> [UInt8] {
        var e = Proto()
        e.double(1, wallTime)
        e.string(3, fileVersion)
        return e.bytes
    }

    /// `Event{wall_time, step, summary{value}}`.
    public static func event(wallTime: Double, step: Int64, value: Proto) -> [UInt8] {
        var s = Proto()
        s.message(1, value)
        var e = Proto()
        e.double(1, wallTime)
        if step != 0 { e.int(2, step) }
        e.message(5, s)
        return e.bytes
    }

    /// `SummaryMetadata{plugin_data{plugin_name, content}, data_class}`.
    public static func metadata(plugin: String, content: [UInt8] = [], dataClass: Int64 = 0) -> Proto {
        var pd = Proto()
        pd.string(1, plugin)
        if !content.isEmpty { pd.data(2, content) }
        var m = Proto()
        m.message(1, pd)
        if dataClass != 0 { m.int(4, dataClass) }
        return m
    }

    // MARK: scalars

    /// A whole scalar event's payload (tests, tools).
    public static func scalar(tag: String, wallTime: Double, step: Int64, value: Double) -> [UInt8] {
        let t = ScalarTag(tag: tag)
        defer { t.deallocate() }
        let out = EventBuffer(capacity: 256)
        t.append(to: out, wallTime: wallTime, step: step, value: value)
        let b = out.bytes
        return Array(b[12..<(b.count - 4)])
    }

    // MARK: text

    /// A text summary (plugin `text`): a DT_STRING scalar tensor of Markdown.
    public static func text(tag: String, markdown: String, wallTime: Double, step: Int64) -> [UInt8] {
        var v = Proto()
        v.string(1, tag)
        v.message(9, metadata(plugin: "text", dataClass: 2))
        var t = Proto()
        t.int(1, 7)  // DT_STRING
        t.data(2, [])  // shape [] (a scalar)
        t.string(8, markdown)
        v.message(8, t)
        return event(wallTime: wallTime, step: step, value: v)
    }

    /// Markdown that TensorBoard shows as the text it is: a code block (every line indented four
    /// spaces), so `_`, `*` or `#` in a log line are not taken as formatting.
    public static func preformatted(_ text: String) -> String {
        var out = "    "
        for ch in text.unicodeScalars {
            out.unicodeScalars.append(ch)
            if ch == "\n" { out += "    " }
        }
        return out
    }

    // MARK: images, histograms (the SummaryWriter's stored artifacts, export)

    /// PNG width, height and TensorBoard colorspace (1 gray, 2 gray+alpha, 3 RGB, 4 RGBA) from its
    /// IHDR chunk; nil when the bytes are not a PNG.
    public static func pngInfo(_ png: [UInt8]) -> (width: Int, height: Int, colorspace: Int)? {
        let sig: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        guard png.count >= 33, Array(png[0..<8]) == sig, png[12...15].elementsEqual("IHDR".utf8) else { return nil }
        func be32(_ i: Int) -> Int { Int(png[i]) << 24 | Int(png[i + 1]) << 16 | Int(png[i + 2]) << 8 | Int(png[i + 3]) }
        let colorType = png[25]
        let space: Int
        switch colorType {
        case 0: space = 1
        case 4: space = 2
        case 6: space = 4
        default: space = 3  // RGB, palette
        }
        return (be32(16), be32(20), space)
    }

    /// `Summary.Value.image`: an encoded PNG (TensorBoard's images plugin).
    public static func image(tag: String, png: [UInt8], wallTime: Double, step: Int64) -> [UInt8]? {
        guard let info = pngInfo(png) else { return nil }
        var img = Proto()
        img.int(1, Int64(info.height))
        img.int(2, Int64(info.width))
        img.int(3, Int64(info.colorspace))
        img.data(4, png)
        var v = Proto()
        v.string(1, tag)
        v.message(4, img)
        return event(wallTime: wallTime, step: step, value: v)
    }

    /// `Summary.Value.histo`: a HistogramProto (bucket_limit: right edges; bucket: counts).
    public static func histogram(
        tag: String, min: Double, max: Double, num: Double, sum: Double, sumSquares: Double, limits: [Double],
        counts: [Double], wallTime: Double, step: Int64
    ) -> [UInt8] {
        var h = Proto()
        h.double(1, min)
        h.double(2, max)
        h.double(3, num)
        h.double(4, sum)
        h.double(5, sumSquares)
        h.doubles(6, limits)
        h.doubles(7, counts)
        var v = Proto()
        v.string(1, tag)
        v.message(5, h)
        return event(wallTime: wallTime, step: step, value: v)
    }

    // MARK: hparams

    /// An hparam's value: google.protobuf.Value's number, string or bool.
    public enum HParam: Equatable, Sendable {
        case number(Double)
        case string(String)
        case bool(Bool)
    }

    /// A session's outcome (tensorboard.hparams.Status).
    public enum SessionStatus: Int64, Sendable {
        case unknown = 0, success = 1, failure = 2, running = 3
    }

    static let hparamsNullTensor: [UInt8] = [0x08, 0x01, 0x12, 0x04, 0x12, 0x02, 0x08, 0x00]  // DT_FLOAT, shape [0]

    private static func hparamsEvent(tag: String, pluginData: Proto, wallTime: Double) -> [UInt8] {
        var v = Proto()
        v.string(1, tag)
        v.message(9, metadata(plugin: "hparams", content: pluginData.bytes))
        v.data(8, hparamsNullTensor)
        return event(wallTime: wallTime, step: 0, value: v)
    }

    /// `_hparams_/session_start_info`: the run's hyperparameters, so the HParams tab lists the run
    /// (a session) with them; its metrics are the run's scalar tags.
    public static func sessionStart(hparams: [(String, HParam)], groupName: String, startTime: Double, wallTime: Double) -> [UInt8] {
        var info = Proto()
        for (name, value) in hparams {
            var pv = Proto()  // google.protobuf.Value
            switch value {
            case .number(let d): pv.double(2, d)
            case .string(let s): pv.string(3, s)
            case .bool(let b): pv.int(4, b ? 1 : 0)
            }
            var entry = Proto()  // map<string, Value> entry
            entry.string(1, name)
            entry.message(2, pv)
            info.message(1, entry)
        }
        if !groupName.isEmpty { info.string(4, groupName) }
        info.double(5, startTime)
        var pd = Proto()
        pd.message(3, info)  // version 0 is proto3's default: not written
        return hparamsEvent(tag: "_hparams_/session_start_info", pluginData: pd, wallTime: wallTime)
    }

    /// `_hparams_/session_end_info`: the run's status and end time.
    public static func sessionEnd(status: SessionStatus, endTime: Double, wallTime: Double) -> [UInt8] {
        var info = Proto()
        if status != .unknown { info.int(1, status.rawValue) }
        info.double(2, endTime)
        var pd = Proto()
        pd.message(4, info)
        return hparamsEvent(tag: "_hparams_/session_end_info", pluginData: pd, wallTime: wallTime)
    }

    /// A run's config (config.yaml) as hparams: nested maps flattened to dotted names
    /// (`optimizer.lr`), numbers as numbers, booleans as booleans, strings as strings, and lists
    /// and nulls as their JSON text. At most `limit` entries, in the config's order.
    public static func hparams(fromConfig config: Value, limit: Int = 1000) -> [(String, HParam)] {
        var out: [(String, HParam)] = []
        func walk(_ v: Value, _ name: String) {
            guard out.count < limit else { return }
            switch v {
            case .map(let entries) where !entries.isEmpty:
                for (k, sub) in entries { walk(sub, name.isEmpty ? k : name + "." + k) }
            case .bool(let b): out.append((name, .bool(b)))
            case .int(let i): out.append((name, .number(Double(i))))
            case .double(let d): out.append((name, .number(d)))
            case .string(let s): out.append((name, .string(s)))
            default: if !name.isEmpty { out.append((name, .string(v.jsonText()))) }
            }
        }
        walk(config, "")
        return out
    }
}

/// Tag names that read well in TensorBoard's UI, the same live and in `logctl export`.
public enum TensorBoardTags {
    /// `context/key`, then `/source` when the key has one, then `/rank<R>` for ranks other than 0:
    /// `training/loss`, `validation/accuracy`, `training/grad_norm/encoder.layer1`,
    /// `training/loss/rank3`. A key with no context is its plain name. TensorBoard groups tags by
    /// their first part, so every context is one section.
    public static func scalar(context: String, key: String, source: String, rank: Int64) -> String {
        var tag = context.isEmpty ? key : context + "/" + key
        if !source.isEmpty { tag += "/" + source }
        if rank != 0 { tag += "/rank\(rank)" }
        return tag
    }

    /// main.log's lines, as text summaries.
    public static let log = "logs/main.log"
}

/// An event file's name: TensorBoard reads files whose name holds `tfevents`, in name order, so
/// the segment number is zero-padded after a fixed prefix.
public enum TensorBoardFileName {
    /// `events.out.tfevents.<start seconds>.<host>.logd.<segment, 6 digits>`.
    public static func segment(startSeconds: Int64, host: String, number: Int) -> String {
        let digits = String(number)
        return prefix(startSeconds: startSeconds, host: host) + String(repeating: "0", count: max(0, 6 - digits.count)) + digits
    }

    /// `events.out.tfevents.<start seconds>.<host>.logd.` (the host made a safe file name part).
    public static func prefix(startSeconds: Int64, host: String) -> String {
        var h = ""
        for u in host.unicodeScalars.prefix(64) {
            h.unicodeScalars.append(u.isASCII && (u.properties.isAlphabetic || ("0"..."9").contains(u) || u == "-") ? u : "_")
        }
        if h.isEmpty { h = "localhost" }
        return "events.out.tfevents.\(startSeconds).\(h).logd."
    }
}

/// One scalar tag's events, encoded from a head built once per tag: the daemon's per-metric path.
///
/// The Event's fields are written summary first (protobuf allows any order): `summary{value{tag,
/// simple_value}}` is the same bytes for every value of the tag up to the float, so its bytes and
/// their CRC-32C are computed once; a record copies the head and checksums only the ~24 bytes that
/// change (value, `wall_time`, `step`). TensorBoard gives a `simple_value` the scalars plugin's
/// metadata itself, so none is written. A plain value (raw pointers, no reference counting);
/// `deallocate` frees it.
public struct ScalarTag {
    let head: UnsafeMutablePointer<UInt8>
    let headCount: Int
    let headCRC: UInt32
    /// The masked CRC of the record's length field for each step varint size (1…10 bytes): the
    /// length depends only on it, so it is never checksummed per record.
    let lengthCRCs: UnsafeMutablePointer<UInt32>

    public init(tag: String) {
        var value = Proto()
        value.string(1, tag)
        value.key(2, 5)  // simple_value: fixed32, the float follows the head
        let valueLen = value.bytes.count + 4
        var summary = Proto()
        summary.key(1, 2)
        summary.varint(UInt64(valueLen))
        var h = Proto()
        h.key(5, 2)
        h.varint(UInt64(summary.bytes.count + valueLen))
        h.bytes += summary.bytes + value.bytes
        head = .allocate(capacity: h.bytes.count)
        head.initialize(from: h.bytes, count: h.bytes.count)
        headCount = h.bytes.count
        headCRC = CRC32C.checksum(h.bytes)
        lengthCRCs = .allocate(capacity: 10)
        for size in 1...10 {
            lengthCRCs[size - 1] = CRC32C.masked(CRC32C.checksum(littleEndian: UInt64(h.bytes.count + 4 + 9 + 1 + size)))
        }
    }

    public func deallocate() {
        head.deallocate()
        lengthCRCs.deallocate()
    }

    /// Appends one framed scalar event to `out`; the value is stored as float32 (round to nearest).
    @inline(__always)
    public func append(to out: EventBuffer, wallTime: Double, step: Int64, value: Double) {
        out.reserve(maxRecordBytes)
        out.advance(encode(at: out.base + out.count, wallTime: wallTime, step: step, value: value))
    }

    /// The most bytes one of this tag's framed events takes (a 10-byte step varint).
    public var maxRecordBytes: Int { headCount + 4 + 9 + 1 + 10 + 16 }

    /// Writes one framed scalar event at `start` (room for `maxRecordBytes`); returns its bytes.
    /// Raw memory and no class in sight: the caller's per-metric path pays no retain for it.
    @inline(__always)
    public func encode(at start: UnsafeMutablePointer<UInt8>, wallTime: Double, step: Int64, value: Double) -> Int {
        let stepBits = UInt64(bitPattern: step)
        let stepSize = Proto.varintSize(stepBits)
        let payload = headCount + 4 + 9 + 1 + stepSize
        let record = UnsafeMutableRawPointer(start)
        record.storeBytes(of: UInt64(payload).littleEndian, as: UInt64.self)
        record.storeBytes(of: lengthCRCs[stepSize - 1].littleEndian, toByteOffset: 8, as: UInt32.self)
        (start + 12).update(from: head, count: headCount)
        let tail = record + 12 + headCount
        tail.storeBytes(of: Float(value).bitPattern.littleEndian, as: UInt32.self)
        tail.storeBytes(of: 0x09, toByteOffset: 4, as: UInt8.self)  // wall_time (1), fixed64
        tail.storeBytes(of: wallTime.bitPattern.littleEndian, toByteOffset: 5, as: UInt64.self)
        tail.storeBytes(of: 0x10, toByteOffset: 13, as: UInt8.self)  // step (2), varint
        var q = tail + 14
        var x = stepBits
        while x >= 0x80 {
            q.storeBytes(of: UInt8(truncatingIfNeeded: x) | 0x80, as: UInt8.self)
            q += 1
            x >>= 7
        }
        q.storeBytes(of: UInt8(x), as: UInt8.self)
        q += 1
        let crc = CRC32C.checksum(tail, count: q - tail, crc: headCRC)
        q.storeBytes(of: CRC32C.masked(crc).littleEndian, as: UInt32.self)
        return payload + 16
    }
}
