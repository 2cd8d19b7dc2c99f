"""The 256-byte text block of a card (UCS-2, little-endian), in its four layouts.

The layout is chosen by the card-type character at byte offset 248: a space for the resident
ID card (居民身份证), ``I`` for the 2017 foreigner's permanent residence card, ``Y`` for the 2023
one, ``J`` for the Hong Kong / Macao / Taiwan residents' residence permit. Field widths are in
bytes (two per character); text fields are padded with spaces. Sources: the reader vendors'
SDK documentation of the text block ("文字信息") for each card type.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

TEXT_LEN = 256
TYPE_OFFSET = 248


class CardTextError(ValueError):
    """A text block that cannot be decoded (wrong size, bad UCS-2, unknown card type)."""


# GB 3304-1991 民族代码, as printed on the card (e.g. "汉", "蒙古").
NATIONS = {
    "01": "汉", "02": "蒙古", "03": "回", "04": "藏", "05": "维吾尔", "06": "苗", "07": "彝", "08": "壮",
    "09": "布依", "10": "朝鲜", "11": "满", "12": "侗", "13": "瑶", "14": "白", "15": "土家", "16": "哈尼",
    "17": "哈萨克", "18": "傣", "19": "黎", "20": "傈僳", "21": "佤", "22": "畲", "23": "高山", "24": "拉祜",
    "25": "水", "26": "东乡", "27": "纳西", "28": "景颇", "29": "柯尔克孜", "30": "土", "31": "达斡尔",
    "32": "仫佬", "33": "羌", "34": "布朗", "35": "撒拉", "36": "毛南", "37": "仡佬", "38": "锡伯", "39": "阿昌",
    "40": "普米", "41": "塔吉克", "42": "怒", "43": "乌孜别克", "44": "俄罗斯", "45": "鄂温克", "46": "德昂",
    "47": "保安", "48": "裕固", "49": "京", "50": "塔塔尔", "51": "独龙", "52": "鄂伦春", "53": "赫哲",
    "54": "门巴", "55": "珞巴", "56": "基诺", "97": "其他", "98": "外国血统中国籍人士",
}
# GB/T 2261.1 sex codes.
SEXES = {"0": "未知", "1": "男", "2": "女", "9": "未说明"}

RESIDENT, FOREIGN_2017, FOREIGN_2023, HMT = "resident", "foreign_2017", "foreign_2023", "hk_macao_taiwan"
TYPE_FLAGS = {" ": RESIDENT, "I": FOREIGN_2017, "Y": FOREIGN_2023, "J": HMT}

# (field, width in bytes) in order; "_" fields are reserved; "type" is the type character.
LAYOUTS: dict[str, list[tuple[str, int]]] = {
    RESIDENT: [("name", 30), ("sex", 2), ("nation", 4), ("birth", 16), ("address", 70), ("id_number", 36),
               ("authority", 30), ("valid_from", 16), ("valid_to", 16), ("_", 28), ("type", 2), ("_", 6)],
    HMT: [("name", 30), ("sex", 2), ("_", 4), ("birth", 16), ("address", 70), ("id_number", 36),
          ("authority", 30), ("valid_from", 16), ("valid_to", 16), ("pass_number", 18), ("issue_count", 4),
          ("_", 6), ("type", 2), ("_", 6)],
    FOREIGN_2017: [("english_name", 120), ("sex", 2), ("id_number", 30), ("country", 6), ("name", 30),
                   ("valid_from", 16), ("valid_to", 16), ("birth", 16), ("card_version", 4),
                   ("authority", 8), ("type", 2), ("_", 6)],
    FOREIGN_2023: [("name", 30), ("sex", 2), ("renewals", 4), ("birth", 16), ("english_name", 70),
                   ("id_number", 36), ("_", 30), ("valid_from", 16), ("valid_to", 16),
                   ("english_name_more", 22), ("country", 6), ("type", 2), ("previous_number_link", 6)],
}
for _kind, _fields in LAYOUTS.items():
    assert sum(w for _, w in _fields) == TEXT_LEN, _kind
    assert sum(w for n, w in _fields[: [n for n, _ in _fields].index("type")]) == TYPE_OFFSET, _kind

LONG_TERM = "长期"
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def gb11643_check_char(first17: str) -> str:
    """The check character of an 18-character ID number (GB 11643-1999, ISO 7064 MOD 11-2)."""
    total = sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True))
    return "10X98765432"[total % 11]


def id_number_valid(number: str) -> bool:
    return (len(number) == 18 and number[:17].isdigit()
            and gb11643_check_char(number[:17]) == number[17].upper())


@dataclass(frozen=True)
class CardText:
    """What the card says. Dates as printed (YYYYMMDD); ``valid_to`` may be ``长期``."""

    kind: str
    name: str
    sex: str
    birth: str
    id_number: str
    valid_from: str
    valid_to: str
    authority: str = ""
    nation: str = ""
    address: str = ""
    english_name: str = ""
    country: str = ""
    pass_number: str = ""
    issue_count: str = ""
    card_version: str = ""
    renewals: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def sex_name(self) -> str:
        return SEXES.get(self.sex, self.sex)

    @property
    def nation_name(self) -> str:
        return NATIONS.get(self.nation, self.nation)

    @property
    def id_number_checks(self) -> bool:
        """The 18-character number's check character is right (the 2017 foreigner's card has a
        15-character number without one)."""
        return True if self.kind == FOREIGN_2017 else id_number_valid(self.id_number)

    @property
    def long_term(self) -> bool:
        return self.valid_to == LONG_TERM

    def valid_on(self, day: date) -> bool:
        """Within its validity period on ``day`` (inclusive); a 长期 card has no end."""
        start = _parse_date(self.valid_from)
        if start is None or day < start:
            return False
        if self.long_term:
            return True
        end = _parse_date(self.valid_to)
        return end is not None and day <= end


def _parse_date(text: str) -> date | None:
    try:
        return date(int(text[0:4]), int(text[4:6]), int(text[6:8])) if len(text) == 8 and text.isdigit() else None
    except ValueError:
        return None


def card_type_flag(block: bytes) -> str:
    if len(block) != TEXT_LEN:
        raise CardTextError(f"text block must be {TEXT_LEN} bytes, got {len(block)}")
    try:
        flag = block[TYPE_OFFSET : TYPE_OFFSET + 2].decode("utf-16-le")
    except UnicodeDecodeError as exc:
        raise CardTextError("card type flag is not UCS-2") from exc
    return " " if flag in (" ", "\x00") else flag


def decode_text(block: bytes) -> CardText:
    flag = card_type_flag(block)
    kind = TYPE_FLAGS.get(flag)
    if kind is None:
        raise CardTextError(f"unknown card type flag {flag!r}")
    values: dict[str, str] = {}
    offset = 0
    for name, width in LAYOUTS[kind]:
        raw = block[offset : offset + width]
        offset += width
        if name in ("_", "type"):
            continue
        try:
            text = raw.decode("utf-16-le")
            # The 2023 card splits the English name over two fields: keep the first one's padding
            # (it may end in a real space) until the two are joined.
            keep = kind == FOREIGN_2023 and name == "english_name"
            values[name] = text if keep else text.rstrip(" \x00")
        except UnicodeDecodeError as exc:
            raise CardTextError(f"field {name} is not valid UCS-2") from exc
    if kind == FOREIGN_2023:
        values["english_name"] = (values.pop("english_name") + values.pop("english_name_more")).rstrip(" \x00")
        values.pop("previous_number_link", None)
    known = {f for f in CardText.__dataclass_fields__}
    extra = {k: v for k, v in values.items() if k not in known}
    return CardText(kind=kind, extra=extra, **{k: v for k, v in values.items() if k in known})


def encode_text(card: CardText) -> bytes:
    """The inverse of `decode_text` (used by the simulator and tests)."""
    values = {
        "name": card.name, "sex": card.sex, "nation": card.nation, "birth": card.birth, "address": card.address,
        "id_number": card.id_number, "authority": card.authority, "valid_from": card.valid_from,
        "valid_to": card.valid_to, "english_name": card.english_name, "country": card.country,
        "pass_number": card.pass_number, "issue_count": card.issue_count, "card_version": card.card_version,
        "renewals": card.renewals, **card.extra,
    }
    if card.kind == FOREIGN_2023:
        values["english_name"], values["english_name_more"] = card.english_name[:35], card.english_name[35:46]
    flag = {v: k for k, v in TYPE_FLAGS.items()}[card.kind]
    out = bytearray()
    for name, width in LAYOUTS[card.kind]:
        text = flag if name == "type" else ("" if name == "_" else values.get(name, ""))
        raw = text.encode("utf-16-le")
        if len(raw) > width:
            raise CardTextError(f"field {name} is longer than {width // 2} characters")
        out += raw + " ".encode("utf-16-le") * ((width - len(raw)) // 2)
    return bytes(out)
