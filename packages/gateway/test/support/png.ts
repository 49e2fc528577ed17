import { inflateSync } from "node:zlib"

/** The pixels of an 8-bit, non-interlaced RGB or RGBA PNG (what Chromium's screenshots are). */
export interface Image {
  readonly width: number
  readonly height: number
  /** RGB of each pixel, row by row. */
  readonly rgb: (x: number, y: number) => readonly [number, number, number]
}

export const decodePng = (png: Uint8Array): Image => {
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength)
  let offset = 8
  let width = 0
  let height = 0
  let channels = 0
  const idat: Array<Uint8Array> = []
  while (offset < png.length) {
    const length = view.getUint32(offset)
    const type = String.fromCharCode(...png.subarray(offset + 4, offset + 8))
    const data = png.subarray(offset + 8, offset + 8 + length)
    if (type === "IHDR") {
      width = view.getUint32(offset + 8)
      height = view.getUint32(offset + 12)
      const depth = data[8]
      const color = data[9]
      if (depth !== 8 || (color !== 2 && color !== 6) || data[12] !== 0) throw new Error("unsupported PNG")
      channels = color === 2 ? 3 : 4
    } else if (type === "IDAT") {
      idat.push(data)
    }
    offset += 12 + length
  }
  const raw = inflateSync(Buffer.concat(idat))
  const stride = width * channels
  const pixels = new Uint8Array(height * stride)
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1))
    for (let x = 0; x < stride; x++) {
      const a = x >= channels ? pixels[y * stride + x - channels] : 0
      const b = y > 0 ? pixels[(y - 1) * stride + x] : 0
      const c = x >= channels && y > 0 ? pixels[(y - 1) * stride + x - channels] : 0
      const paeth = () => {
        const p = a + b - c
        const pa = Math.abs(p - a)
        const pb = Math.abs(p - b)
        const pc = Math.abs(p - c)
        return pa <= pb && pa <= pc ? a : pb <= pc ? b : c
      }
      const predictor = filter === 0 ? 0 : filter === 1 ? a : filter === 2 ? b : filter === 3 ? (a + b) >> 1 : paeth()
      pixels[y * stride + x] = (line[x] + predictor) & 0xff
    }
  }
  return {
    width,
    height,
    rgb: (x, y) => {
      const i = y * stride + x * channels
      return [pixels[i], pixels[i + 1], pixels[i + 2]]
    }
  }
}

/** How many pixels are within `tolerance` of `hex` on every channel. */
export const countColor = (image: Image, hex: string, tolerance = 8): number => {
  const target = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16))
  let count = 0
  for (let y = 0; y < image.height; y++) {
    for (let x = 0; x < image.width; x++) {
      const pixel = image.rgb(x, y)
      if (pixel.every((v, i) => Math.abs(v - target[i]) <= tolerance)) count++
    }
  }
  return count
}
