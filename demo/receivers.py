"""Made-up receivers for the demo orders: Chinese, far-west (risk review) and overseas names, phones and
addresses, all drawn from the caller's random generator."""

from __future__ import annotations

import random
from decimal import Decimal

from orders.services import ReceiverInput

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林高罗郑梁谢宋唐许韩冯邓曹"
GIVEN_NAMES = ["小贝", "娜", "伟", "芳", "敏", "静", "磊", "洋", "艳", "勇", "杰", "娟", "涛", "明", "超",
               "秀英", "晓燕", "子涵", "浩然", "欣怡", "思远", "雨桐", "建国", "春梅", "志强", "佳怡", "文博",
               "梓萱", "一鸣", "海燕"]
MOBILE_PREFIXES = ["130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152", "153",
                   "155", "156", "157", "158", "159", "166", "173", "177", "180", "181", "182", "183", "185",
                   "186", "187", "188", "189", "191", "193", "195", "198", "199"]
# (province, city, district, streets)
CN_ADDRESSES = [
    ("上海市", "上海市", "浦东新区", ["张江路", "世纪大道", "锦绣路"]),
    ("上海市", "上海市", "徐汇区", ["漕溪北路", "肇嘉浜路", "虹桥路"]),
    ("上海市", "上海市", "静安区", ["南京西路", "江宁路"]),
    ("江苏省", "南京市", "鼓楼区", ["中山北路", "北京西路"]),
    ("江苏省", "苏州市", "姑苏区", ["人民路", "干将西路"]),
    ("浙江省", "杭州市", "西湖区", ["文三路", "教工路", "天目山路"]),
    ("浙江省", "杭州市", "余杭区", ["文一西路", "五常大道"]),
    ("浙江省", "宁波市", "鄞州区", ["天童南路", "四明中路"]),
    ("安徽省", "合肥市", "蜀山区", ["长江西路", "望江西路"]),
    ("广东省", "深圳市", "南山区", ["深南大道", "科技南十二路", "南海大道"]),
    ("广东省", "深圳市", "福田区", ["福华三路", "深南中路"]),
    ("广东省", "广州市", "天河区", ["天河路", "体育西路", "花城大道"]),
    ("广东省", "广州市", "海珠区", ["新港中路", "江南大道中"]),
    ("广东省", "佛山市", "禅城区", ["祖庙路", "季华五路"]),
    ("广西壮族自治区", "南宁市", "青秀区", ["民族大道", "东葛路"]),
    ("福建省", "厦门市", "思明区", ["湖滨南路", "中山路"]),
    ("福建省", "福州市", "鼓楼区", ["五四路", "杨桥中路"]),
    ("海南省", "海口市", "龙华区", ["滨海大道", "国贸大道"]),
    ("北京市", "北京市", "朝阳区", ["建国路", "朝阳北路", "望京街"]),
    ("北京市", "北京市", "海淀区", ["中关村大街", "学院路"]),
    ("天津市", "天津市", "和平区", ["南京路", "滨江道"]),
    ("四川省", "成都市", "锦江区", ["春熙路", "东大街"]),
    ("四川省", "成都市", "武侯区", ["科华北路", "人民南路四段"]),
    ("湖北省", "武汉市", "洪山区", ["珞喻路", "雄楚大道"]),
    ("湖南省", "长沙市", "岳麓区", ["麓山南路", "枫林三路"]),
    ("山东省", "青岛市", "市南区", ["香港中路", "东海西路"]),
    ("河南省", "郑州市", "金水区", ["花园路", "农业路"]),
    ("陕西省", "西安市", "雁塔区", ["小寨东路", "长安南路"]),
    ("重庆市", "重庆市", "渝中区", ["民族路", "中山三路"]),
    ("辽宁省", "沈阳市", "和平区", ["太原北街", "南京北街"]),
    ("黑龙江省", "哈尔滨市", "南岗区", ["西大直街", "红军街"]),
    ("云南省", "昆明市", "五华区", ["人民中路", "东风西路"]),
]
# Far-west addresses: large orders shipping there go through a manual risk review first.
REMOTE_ADDRESSES = [
    ("新疆维吾尔自治区", "乌鲁木齐市", "天山区", ["解放北路", "中山路"]),
    ("新疆维吾尔自治区", "乌鲁木齐市", "沙依巴克区", ["友好北路", "西北路"]),
    ("新疆维吾尔自治区", "喀什地区", "喀什市", ["人民东路", "解放北路"]),
    ("西藏自治区", "拉萨市", "城关区", ["北京中路", "江苏路"]),
    ("西藏自治区", "日喀则市", "桑珠孜区", ["上海中路"]),
]
REMOTE_PROVINCES = {address[0] for address in REMOTE_ADDRESSES}
RISK_REVIEW_ABOVE = Decimal("500")

# (country, region, city, street, postcode); 555-01xx and 020 7946 0xxx are numbers reserved for fiction.
OVERSEAS_ADDRESSES = [
    ("US", "NY", "New York", "Broadway", "10012"),
    ("US", "CA", "San Francisco", "Market Street", "94103"),
    ("US", "CA", "Los Angeles", "Sunset Boulevard", "90028"),
    ("US", "WA", "Seattle", "Pine Street", "98101"),
    ("US", "TX", "Austin", "Congress Avenue", "78701"),
    ("US", "IL", "Chicago", "North Michigan Avenue", "60611"),
    ("US", "NJ", "Jersey City", "Newark Avenue", "07302"),
    ("US", "MA", "Boston", "Boylston Street", "02116"),
    ("GB", "England", "London", "Baker Street", "NW1 6XE"),
    ("GB", "England", "Manchester", "Deansgate", "M3 2BW"),
    ("GB", "Scotland", "Edinburgh", "Princes Street", "EH2 2ER"),
    ("DE", "Berlin", "Berlin", "Friedrichstraße", "10117"),
    ("DE", "Bayern", "München", "Leopoldstraße", "80802"),
    ("DE", "Hamburg", "Hamburg", "Mönckebergstraße", "20095"),
    ("DE", "Hessen", "Frankfurt am Main", "Zeil", "60313"),
]
ENGLISH_NAMES = ["Emily Johnson", "Michael Smith", "Sarah Williams", "David Brown", "Jessica Miller",
                 "James Wilson", "Olivia Taylor", "Daniel Anderson", "Sophie Clarke", "Oliver Hughes"]
GERMAN_NAMES = ["Lukas Müller", "Anna Schmidt", "Felix Schneider", "Lena Fischer", "Jonas Weber", "Marie Becker"]
US_AREA_CODES = {"NY": "212", "CA": "415", "WA": "206", "TX": "512", "IL": "312", "NJ": "201", "MA": "617"}


def digits(rng: random.Random, length: int) -> str:
    return str(rng.randint(1, 9)) + "".join(str(rng.randint(0, 9)) for _ in range(length - 1))


def cn_receiver(rng: random.Random, *, remote: bool) -> ReceiverInput:
    province, city, district, streets = rng.choice(REMOTE_ADDRESSES if remote else CN_ADDRESSES)
    address = f"{rng.choice(streets)}{rng.randint(1, 1200)}号"
    if rng.random() < 0.8:
        address += f" {rng.randint(1, 30)}栋{rng.randint(1, 32)}{rng.randint(1, 6):02d}室"
    return ReceiverInput(name=rng.choice(SURNAMES) + rng.choice(GIVEN_NAMES),
                         phone=rng.choice(MOBILE_PREFIXES) + "".join(str(rng.randint(0, 9)) for _ in range(8)),
                         country="CN", province=province, city=city, district=district, address=address)


def overseas_receiver(rng: random.Random) -> ReceiverInput:
    country, region, city, street, postcode = rng.choice(OVERSEAS_ADDRESSES)
    number = rng.randint(1, 480)
    if country == "US":
        name = rng.choice(ENGLISH_NAMES)
        phone = f"+1 {US_AREA_CODES[region]}-555-01{rng.randint(0, 99):02d}"
        address = f"{number} {street}" + (f", Apt {rng.randint(1, 30)}{rng.choice('ABCD')}" if rng.random() < 0.5 else "")
    elif country == "GB":
        name = rng.choice(ENGLISH_NAMES)
        phone = f"+44 20 7946 0{rng.randint(0, 999):03d}"
        address = f"{number} {street}"
    else:
        name = rng.choice(GERMAN_NAMES)
        phone = f"+49 30 {rng.randint(1000000, 9999999)}"
        address = f"{street} {number}"
    return ReceiverInput(name=name, phone=phone, country=country, province=region, city=city,
                         address=address, zip=postcode)

