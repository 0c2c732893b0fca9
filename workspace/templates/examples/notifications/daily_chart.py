#!/usr/bin/env python3
"""Daily chart: revenue of the last 7 days with orders, as a bar chart, every morning.

# schedule: daily 08:00
# depends:

Needs only python3: the data comes from `$ANALYST_BIN sql` and the PNG is drawn by hand
(use matplotlib instead if your server has it).
"""
import json
import os
import struct
import subprocess
import sys
import zlib

QUERY = """
SELECT order_date::VARCHAR AS day, sum(total)::DOUBLE AS revenue
FROM orders WHERE status <> 'cancelled'
GROUP BY 1 ORDER BY 1 DESC LIMIT 7
"""


def png(width, height, pixel):
    """Encode an RGB image; pixel(x, y) returns (r, g, b)."""
    rows = b"".join(b"\x00" + bytes(c for x in range(width) for c in pixel(x, y)) for y in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b""))


def main():
    try:
        out = subprocess.run([os.environ["ANALYST_BIN"], "sql", QUERY], check=True, capture_output=True, text=True).stdout
    except subprocess.CalledProcessError as e:
        print(e.stderr, file=sys.stderr)
        return 1
    days = list(reversed(json.loads(out)))
    if not days:
        print(json.dumps({"notify": False}))
        return 0
    width, height, pad = 640, 320, 20
    top = max(d["revenue"] for d in days) or 1
    bar = (width - 2 * pad) // len(days)

    def pixel(x, y):
        i = (x - pad) // bar
        if 0 <= i < len(days) and (x - pad) % bar < bar - 8 and y >= pad:
            h = int((height - 2 * pad) * days[i]["revenue"] / top)
            if height - pad - h <= y < height - pad:
                return (0xEA, 0x58, 0x0C) if i == len(days) - 1 else (0x00, 0x73, 0xD1)
        return (255, 255, 255)

    path = os.path.join(os.environ.get("TMPDIR", "/tmp"), "daily_revenue.png")
    with open(path, "wb") as f:
        f.write(png(width, height, pixel))
    latest = days[-1]
    total = sum(d["revenue"] for d in days)
    print(json.dumps({
        "notify": True,
        "title": "Daily revenue",
        "message": f"{latest['day']}: {latest['revenue']:,.2f}\nLast {len(days)} days: {total:,.2f} (avg {total / len(days):,.2f})",
        "image_path": path,
        "cooldown": "1d",
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
