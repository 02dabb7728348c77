"""Sample data the Chinese-platform sandboxes (Taobao, PDD, Douyin) draw their generated orders from."""

from __future__ import annotations

import random

# The products every sandbox sells (merchant code, price in yuan); each default catalogue adds one more.
SHARED_SKUS = [("TEA-LJ-250G", "268.00"), ("TEA-LJ-500G", "498.00"), ("TEA-PE-357G", "158.00"),
               ("CUP-CER-350", "39.00"), ("CUP-THM-500-BLK", "129.00")]
SHARED_TITLES = {
    "TEA-LJ-250G": "2024新茶 西湖龙井 明前特级 250g 罐装", "TEA-LJ-500G": "西湖龙井 500g 礼盒装 送礼佳品",
    "TEA-PE-357G": "云南普洱熟茶饼 357g 勐海古树", "CUP-CER-350": "陶瓷马克杯 350ml 简约办公室水杯",
    "CUP-THM-500-BLK": "不锈钢保温杯 500ml 黑色 长效保温",
}
# The Taobao and PDD catalogue (Douyin sells a phone case instead of the nuts).
DEFAULT_SKUS = [*SHARED_SKUS, ("FOOD-NUT-750G", "129.00")]
TITLES = {**SHARED_TITLES, "FOOD-NUT-750G": "每日坚果 750g（30 袋）混合果仁"}

# (province, city, district, zip, streets): real places, so routing by province has something to match.
PLACES = [
    ("浙江省", "杭州市", "西湖区", "310012", ["文三路", "古墩路", "天目山路"]),
    ("上海市", "上海市", "浦东新区", "200120", ["张江路", "世纪大道", "陆家嘴环路"]),
    ("北京市", "北京市", "朝阳区", "100020", ["建国路", "望京街", "朝阳北路"]),
    ("广东省", "广州市", "天河区", "510630", ["天河路", "体育西路", "华夏路"]),
    ("广东省", "深圳市", "南山区", "518057", ["高新南一道", "深南大道", "后海大道"]),
    ("江苏省", "南京市", "鼓楼区", "210008", ["中山北路", "湖南路", "北京西路"]),
    ("江苏省", "苏州市", "姑苏区", "215000", ["人民路", "干将西路", "十全街"]),
    ("四川省", "成都市", "武侯区", "610041", ["人民南路四段", "科华北路", "武侯祠大街"]),
    ("湖北省", "武汉市", "洪山区", "430070", ["珞喻路", "光谷大道", "雄楚大道"]),
    ("陕西省", "西安市", "雁塔区", "710061", ["小寨东路", "长安中路", "高新路"]),
    ("福建省", "厦门市", "思明区", "361001", ["湖滨南路", "鹭江道", "厦禾路"]),
    ("山东省", "青岛市", "市南区", "266071", ["香港中路", "闽江路", "山东路"]),
    ("天津市", "天津市", "和平区", "300041", ["南京路", "滨江道", "营口道"]),
]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林高罗"
GIVEN_NAMES = ["伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛",
               "明", "超", "秀兰", "霞", "平", "刚", "晨", "欣怡", "子涵", "浩然", "雨萱", "思远"]
MOBILE_PREFIXES = ["130", "131", "132", "135", "136", "137", "138", "139", "150", "151", "152", "155", "157",
                   "158", "159", "166", "176", "177", "178", "180", "181", "182", "183", "185", "186", "187",
                   "188", "189", "191", "198", "199"]
BUYER_MESSAGES = ["周末配送", "请尽快发货，谢谢", "不要放快递柜", "送人的，不要放价格单"]


def house_number(rng: random.Random) -> str:
    """What follows the street in an address: a number, now and then a building, unit and flat."""
    return f"{rng.randint(1, 999)}号" + rng.choice(
        ["", f"{rng.randint(1, 30)}栋{rng.randint(1, 3)}单元{rng.randint(101, 2802)}室"])
