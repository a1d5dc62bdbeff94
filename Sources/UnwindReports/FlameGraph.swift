@_spi(Tools) import WasmUnwind

/// A profile drawn as a flame graph: a self-contained SVG, the oldest frame
/// at the bottom, each frame as wide as the samples it was on, siblings in
/// name order (as flamegraph.pl draws them). Wasm frames are warm, host
/// frames cool; every frame has a tooltip with its name, samples and share.
public struct FlameGraph: Sendable {
    public var title: String
    public var width: Int
    public var frameHeight: Int

    public init(title: String = "wasm-unwind profile", width: Int = 1200, frameHeight: Int = 17) {
        self.title = title
        self.width = width
        self.frameHeight = frameHeight
    }

    private final class Node {
        let frame: Profile.Frame
        var count = 0
        var children: [Profile.Frame: Node] = [:]
        init(_ frame: Profile.Frame) { self.frame = frame }

        var depth: Int { 1 + (children.values.map(\.depth).max() ?? 0) }
    }

    /// The SVG document.
    public func render(_ profile: Profile) -> String {
        let root = Node(Profile.Frame(name: "all", isWasm: false))
        for stack in profile.stacks {
            root.count += stack.count
            var node = root
            for frame in stack.frames {
                let child = node.children[frame] ?? Node(frame)
                node.children[frame] = child
                child.count += stack.count
                node = child
            }
        }
        let margin = 10, top = 40, bottom = 10
        let levels = root.depth
        let height = top + levels * frameHeight + bottom
        let scale = Double(width - 2 * margin) / Double(max(root.count, 1))
        var svg = """
            <?xml version="1.0" standalone="no"?>
            <svg version="1.1" width="\(width)" height="\(height)" viewBox="0 0 \(width) \(height)" \
            xmlns="http://www.w3.org/2000/svg">
            <style>text { font-family: Verdana, sans-serif; font-size: 12px; fill: #000; } \
            rect:hover { stroke: #000; stroke-width: 0.5; }</style>
            <rect x="0" y="0" width="\(width)" height="\(height)" fill="#f8f8f8"/>
            <text x="\(width / 2)" y="22" text-anchor="middle" style="font-size: 16px">\(escaped(title))</text>
            <text x="\(margin)" y="\(top - 6)" style="font-size: 11px; fill: #555">\(root.count) samples · \
            wasm frames warm, host frames cool · hover for names</text>

            """
        func draw(_ node: Node, x: Double, level: Int) {
            let w = Double(node.count) * scale
            guard w >= 0.1 else { return }
            let y = height - bottom - (level + 1) * frameHeight
            let share = Double(node.count) * 100 / Double(max(root.count, 1))
            let tooltip = "\(node.frame.name) (\(node.count) samples, \(formatted(share))%)"
            svg += "<g><title>\(escaped(tooltip))</title>"
            svg += "<rect x=\"\(formatted(x))\" y=\"\(y)\" width=\"\(formatted(w))\" height=\"\(frameHeight - 1)\" "
                + "rx=\"2\" fill=\"\(level == 0 ? "rgb(200,200,200)" : color(node.frame))\"/>"
            let fits = Int((w - 6) / 7)
            if fits >= 3 {
                let name = node.frame.name
                let label = name.count <= fits ? name : String(name.prefix(fits - 2)) + ".."
                svg += "<text x=\"\(formatted(x + 3))\" y=\"\(y + frameHeight - 5)\">\(escaped(label))</text>"
            }
            svg += "</g>\n"
            var childX = x
            for child in node.children.values.sorted(by: { $0.frame.name < $1.frame.name }) {
                draw(child, x: childX, level: level + 1)
                childX += Double(child.count) * scale
            }
        }
        draw(root, x: Double(margin), level: 0)
        return svg + "</svg>\n"
    }

    /// Warm (red to yellow) for wasm, cool (blue to aqua) for host; the
    /// shade from the name, so a function keeps its colour across graphs.
    private func color(_ frame: Profile.Frame) -> String {
        var hash: UInt32 = 2_166_136_261
        for byte in frame.name.utf8 { hash = (hash ^ UInt32(byte)) &* 16_777_619 }
        let shade = Int(hash % 1000) // 0..<1000
        if frame.isWasm {
            return "rgb(\(205 + shade % 50),\(90 + shade % 130),\(40 + shade % 30))"
        }
        return "rgb(\(70 + shade % 60),\(140 + shade % 70),\(200 + shade % 55))"
    }

    private func formatted(_ value: Double) -> String {
        let rounded = (value * 100).rounded() / 100
        return rounded == rounded.rounded() ? String(Int(rounded)) : String(rounded)
    }

    private func escaped(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(character)
            }
        }
        return out
    }
}
