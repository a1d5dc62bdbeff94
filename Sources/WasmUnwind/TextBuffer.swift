/// A growable buffer of UTF-8 bytes that text is rendered into: each append
/// is a store and a bounds check, with no reference counting and no
/// uniqueness check (what makes `[UInt8].append` cost ~40 instructions a
/// byte when not inlined). Owns its memory; made a `String` once, at the end.
struct TextBuffer: ~Copyable {
    // SAFETY: `base` holds `capacity` bytes, the first `count` initialized;
    // every write reserves room first, and the buffer is not copyable, so
    // the memory has one owner, which frees it.
    private var base: UnsafeMutablePointer<UInt8>
    private var capacity: Int
    private(set) var count = 0

    init(capacity: Int = 256) {
        self.capacity = max(16, capacity)
        base = .allocate(capacity: self.capacity)
    }

    deinit { base.deallocate() }

    var isEmpty: Bool { count == 0 }

    /// Makes room for `extra` more bytes.
    @inline(__always)
    private mutating func reserve(_ extra: Int) {
        guard count + extra > capacity else { return }
        grow(to: count + extra)
    }

    @inline(never)
    private mutating func grow(to needed: Int) {
        var newCapacity = capacity * 2
        while newCapacity < needed { newCapacity *= 2 }
        let newBase = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        newBase.update(from: base, count: count)
        base.deallocate()
        base = newBase
        capacity = newCapacity
    }

    @inline(__always)
    mutating func append(_ byte: UInt8) {
        reserve(1)
        base[count] = byte
        count += 1
    }

    /// `byte`, `times` times.
    mutating func append(_ byte: UInt8, times: Int) {
        guard times > 0 else { return }
        reserve(times)
        (base + count).update(repeating: byte, count: times)
        count += times
    }

    mutating func append(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard let source = bytes.baseAddress, !bytes.isEmpty else { return }
        reserve(bytes.count)
        (base + count).update(from: source, count: bytes.count)
        count += bytes.count
    }

    mutating func append(_ text: String) {
        var text = text
        text.withUTF8 { append($0) }
    }

    /// `value` in decimal, right-aligned in `width` columns.
    mutating func appendDecimal(_ value: Int, width: Int = 0) {
        var digits = 1, rest = value.magnitude / 10
        while rest > 0 { digits += 1; rest /= 10 }
        let sign = value < 0 ? 1 : 0
        append(UInt8(ascii: " "), times: width - digits - sign)
        if sign == 1 { append(UInt8(ascii: "-")) }
        reserve(digits)
        var position = count + digits
        rest = value.magnitude
        repeat {
            position -= 1
            base[position] = UInt8(ascii: "0") + UInt8(rest % 10)
            rest /= 10
        } while position > count
        count += digits
    }

    /// `0x` and `value` in lower-case hex, right-aligned in `width` columns
    /// (Rust's `{:#width$x}`).
    mutating func appendHex(_ value: UInt64, width: Int = 0) {
        var digits = 1, rest = value >> 4
        while rest > 0 { digits += 1; rest >>= 4 }
        append(UInt8(ascii: " "), times: width - digits - 2)
        append(UInt8(ascii: "0"))
        append(UInt8(ascii: "x"))
        reserve(digits)
        var position = count + digits
        rest = value
        repeat {
            position -= 1
            let digit = UInt8(rest & 0xF)
            base[position] = digit < 10 ? UInt8(ascii: "0") + digit : UInt8(ascii: "a") + digit - 10
            rest >>= 4
        } while position > count
        count += digits
    }

    /// The text so far.
    var string: String {
        String(decoding: UnsafeBufferPointer(start: base, count: count), as: UTF8.self)
    }
}
