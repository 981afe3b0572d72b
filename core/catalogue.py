"""The demo service catalogue and the plain-words search over it (pure, no I/O).

Items are real matters of a village / town / district convenience window. `synonyms`
are what people say ("我要修房子"); `materials` marks which are core (never 容缺).
`workflow` is the review configuration the approval workflow reads.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from pydantic import BaseModel, Field


class Material(BaseModel):
    name: str
    core: bool


class ServiceItem(BaseModel):
    code: str
    name: str
    plain_name: str
    synonyms: list[str] = Field(default_factory=list)
    category: str
    level: str  # village | town | district
    department: str
    materials: list[Material]
    clerk_regions: list[str]
    workflow: dict[str, object] = Field(default_factory=dict)
    time_limit_days: int = 5


def _m(*names: str) -> list[Material]:
    # A trailing "?" marks a non-core material that may be supplied later (容缺).
    return [Material(name=n.rstrip("?"), core=not n.endswith("?")) for n in names]


def _steps(*steps: tuple[str, list[str], str]) -> dict[str, object]:
    return {"steps": [{"level": lv, "groups": g, "mode": mode} for lv, g, mode in steps]}


_HB = ["42"]  # Hubei clerks
_HB_HN = ["42", "43"]  # items also handled by the partner province (跨省通办)

DEMO_ITEMS: list[ServiceItem] = [
    ServiceItem(code="ZJD-JF", name="农村宅基地和建房（规划许可）审批", plain_name="修房子、建新房",
                synonyms=["修房子", "建房", "盖房子", "盖房", "宅基地", "翻修房屋", "起房子"],
                category="住房", level="town", department="乡镇自然资源和规划所",
                materials=_m("身份证", "户口簿", "农村宅基地和建房（规划许可）申请表",
                             "宅基地使用承诺书", "房屋设计图或通用图?", "村民小组会议记录?"),
                clerk_regions=_HB,
                workflow=_steps(("village", ["village-review"], "single"),
                                ("town", ["town-natural-resources", "town-agriculture"], "all")),
                time_limit_days=20),
    ServiceItem(code="YL-CB", name="城乡居民基本养老保险参保登记", plain_name="交养老保险",
                synonyms=["养老保险", "交养老", "参保", "社保", "养老"], category="社保",
                level="village", department="乡镇人力资源和社会保障服务中心",
                materials=_m("身份证", "户口簿", "参保登记表?"), clerk_regions=_HB_HN,
                workflow=_steps(("town", ["town-social-security"], "single")), time_limit_days=3),
    ServiceItem(code="YL-DY", name="城乡居民基本养老保险待遇领取", plain_name="领养老金",
                synonyms=["领养老金", "养老金", "退休金", "领钱"], category="社保", level="town",
                department="乡镇人力资源和社会保障服务中心",
                materials=_m("身份证", "户口簿", "社会保障卡?"), clerk_regions=_HB_HN,
                workflow=_steps(("town", ["town-social-security"], "single"),
                                ("district", ["district-social-security"], "single"))),
    ServiceItem(code="YB-CB", name="城乡居民基本医疗保险参保登记", plain_name="交医保",
                synonyms=["医保", "合作医疗", "新农合", "看病保险"], category="医保",
                level="village", department="区医疗保障局",
                materials=_m("身份证", "户口簿"), clerk_regions=_HB_HN,
                workflow=_steps(("town", ["town-medical-insurance"], "single")),
                time_limit_days=3),
    ServiceItem(code="YB-BX", name="医疗费用手工（零星）报销", plain_name="报销医药费",
                synonyms=["报销", "医药费", "看病报销", "住院报销", "药费"], category="医保",
                level="district", department="区医疗保障局",
                materials=_m("身份证", "社会保障卡", "医疗费用发票", "费用明细清单",
                             "出院小结?", "银行卡?"), clerk_regions=_HB_HN,
                workflow=_steps(("district", ["district-medical-insurance"], "single")),
                time_limit_days=15),
    ServiceItem(code="DB-SQ", name="最低生活保障申请", plain_name="申请低保",
                synonyms=["低保", "生活困难", "吃低保", "最低生活"], category="救助",
                level="district", department="区民政局",
                materials=_m("身份证", "户口簿", "最低生活保障申请书",
                             "家庭经济状况核对授权书", "收入证明?", "病历或残疾证?"),
                clerk_regions=_HB,
                workflow=_steps(("town", ["town-civil-affairs"], "single"),
                                ("district", ["district-civil-affairs"], "single")),
                time_limit_days=30),
    ServiceItem(code="TK-GY", name="特困人员救助供养", plain_name="五保户、特困供养",
                synonyms=["五保", "特困", "孤寡老人", "没人养"], category="救助",
                level="district", department="区民政局",
                materials=_m("身份证", "户口簿", "特困人员救助供养申请书", "证明材料?"),
                clerk_regions=_HB,
                workflow=_steps(("town", ["town-civil-affairs"], "single"),
                                ("district", ["district-civil-affairs"], "single")),
                time_limit_days=30),
    ServiceItem(code="LS-JZ", name="临时救助申请", plain_name="遇到急难，申请临时救助",
                synonyms=["临时救助", "急难", "救急", "遭灾", "大病救助"], category="救助",
                level="town", department="乡镇社会事务办",
                materials=_m("身份证", "临时救助申请书", "相关证明?"), clerk_regions=_HB,
                workflow=_steps(("town", ["town-civil-affairs"], "single")), time_limit_days=10),
    ServiceItem(code="CJ-ZB", name="残疾人证新办", plain_name="办残疾证",
                synonyms=["残疾证", "残疾人证", "评残"], category="残疾人", level="district",
                department="区残疾人联合会",
                materials=_m("身份证", "户口簿", "近期二寸免冠照片?", "残疾评定表"),
                clerk_regions=_HB_HN,
                workflow=_steps(("district", ["district-disabled-federation"], "single")),
                time_limit_days=20),
    ServiceItem(code="CJ-BT", name="困难残疾人生活补贴和重度残疾人护理补贴",
                plain_name="残疾人补贴", synonyms=["残疾补贴", "两项补贴", "护理补贴"],
                category="残疾人", level="town", department="乡镇社会事务办",
                materials=_m("身份证", "残疾人证", "银行卡?"), clerk_regions=_HB,
                workflow=_steps(("town", ["town-civil-affairs"], "single"),
                                ("district", ["district-civil-affairs",
                                              "district-disabled-federation"], "all"))),
    ServiceItem(code="GL-JT", name="高龄津贴申领", plain_name="老人高龄补贴",
                synonyms=["高龄补贴", "老人补贴", "80岁补贴", "老年补贴", "尊老金"],
                category="老年人", level="village", department="乡镇社会事务办",
                materials=_m("身份证", "户口簿", "银行卡?"), clerk_regions=_HB,
                workflow=_steps(("town", ["town-civil-affairs"], "single")), time_limit_days=10),
    ServiceItem(code="SY-DJ", name="生育登记服务", plain_name="生孩子登记",
                synonyms=["生育登记", "生孩子", "准生证", "生小孩", "怀孕登记"], category="生育",
                level="village", department="乡镇卫生健康办",
                materials=_m("夫妻双方身份证", "结婚证?"), clerk_regions=_HB_HN,
                workflow=_steps(("town", ["town-health"], "any")), time_limit_days=1),
    ServiceItem(code="HJ-ZM", name="户籍证明（亲属关系证明）开具", plain_name="开户口证明",
                synonyms=["开证明", "户口证明", "亲属关系", "证明我是我"], category="户籍",
                level="town", department="派出所户籍室",
                materials=_m("身份证", "户口簿"), clerk_regions=_HB,
                workflow=_steps(("town", ["town-police"], "single")), time_limit_days=3),
    ServiceItem(code="GD-BT", name="耕地地力保护补贴申报", plain_name="种地补贴",
                synonyms=["种粮补贴", "种地补贴", "耕地补贴", "农业补贴", "粮补"],
                category="农业", level="village", department="乡镇农业服务中心",
                materials=_m("身份证", "土地承包经营权证", "一卡通存折?"), clerk_regions=_HB,
                workflow=_steps(("town", ["town-agriculture"], "single")), time_limit_days=10),
    ServiceItem(code="TD-LZ", name="农村土地经营权流转合同备案", plain_name="土地流转、租地备案",
                synonyms=["土地流转", "租地", "包地", "转让土地"], category="农业", level="town",
                department="乡镇农业服务中心",
                materials=_m("双方身份证", "土地流转合同", "土地承包经营权证?"),
                clerk_regions=_HB,
                workflow=_steps(("town", ["town-agriculture"], "single")), time_limit_days=10),
    ServiceItem(code="JY-DJ", name="就业创业登记", plain_name="找工作、失业登记",
                synonyms=["找工作", "失业", "就业", "打工", "上班", "创业"], category="就业",
                level="village", department="乡镇人力资源和社会保障服务中心",
                materials=_m("身份证", "就业创业证?"), clerk_regions=_HB_HN,
                workflow=_steps(("town", ["town-social-security"], "single")),
                time_limit_days=3),
    ServiceItem(code="TY-YD", name="退役军人优待证申领", plain_name="退伍军人优待证",
                synonyms=["退伍", "当兵", "军人", "优待证", "退役"], category="退役军人",
                level="district", department="区退役军人事务局",
                materials=_m("身份证", "退役证明", "近期彩色免冠照片?"), clerk_regions=_HB_HN,
                workflow=_steps(("town", ["town-veterans"], "single"),
                                ("district", ["district-veterans"], "single")),
                time_limit_days=20),
    ServiceItem(code="GT-SL", name="个体工商户设立登记", plain_name="开店办营业执照",
                synonyms=["开店", "营业执照", "做生意", "开小卖部", "个体户"], category="经营",
                level="district", department="区市场监督管理局",
                materials=_m("经营者身份证", "个体工商户登记申请书", "经营场所证明?"),
                clerk_regions=_HB,
                workflow=_steps(("district", ["district-market"], "single")),
                time_limit_days=3),
    ServiceItem(code="BZ-BT", name="惠民殡葬补贴申领", plain_name="老人去世后的丧葬补贴",
                synonyms=["丧葬", "殡葬", "火化", "去世", "办丧事"], category="民政",
                level="town", department="乡镇社会事务办",
                materials=_m("逝者身份证", "火化证明", "申领人身份证", "亲属关系证明?"),
                clerk_regions=_HB,
                workflow=_steps(("town", ["town-civil-affairs"], "single")), time_limit_days=10),
    ServiceItem(code="JZ-ZM", name="居住证申领", plain_name="外地人办居住证",
                synonyms=["居住证", "暂住证", "外地户口"], category="户籍", level="town",
                department="派出所户籍室",
                materials=_m("身份证", "居住证明（租房合同或房产证）", "近期照片?"),
                clerk_regions=_HB,
                workflow=_steps(("town", ["town-police"], "single")), time_limit_days=15),
]

# Words that carry no meaning for search ("我要", "怎么办").
_FILLER = re.compile(r"我要|我想|想要|怎么|如何|办理|申请|一下|需要|可以|在哪|的|了|吗|呢|办|请问")


def _normal(text: str) -> str:
    return re.sub(r"\s+", "", text).lower()


def _bigrams(text: str) -> set[str]:
    return {text[i : i + 2] for i in range(len(text) - 1)} or ({text} if text else set())


def score(item: ServiceItem, query: str) -> float:
    """How well a plain-words query names an item; 0 means not at all."""
    q = _FILLER.sub("", _normal(query))
    if not q:
        return 0.0
    best = 0.0
    for phrase in [item.name, item.plain_name, *item.synonyms]:
        p = _normal(phrase)
        if q == p:
            best = max(best, 10.0)
        elif q in p or p in q:
            best = max(best, 5.0 + min(len(q), len(p)) / max(len(q), len(p)))
        else:
            qb, pb = _bigrams(q), _bigrams(p)
            overlap = len(qb & pb) / len(qb) if qb else 0.0
            if overlap >= 0.5:
                best = max(best, 3.0 * overlap)
    return best


def search(items: Iterable[ServiceItem], query: str, limit: int = 5) -> list[ServiceItem]:
    """Items best named by `query`, best first; an empty query lists everything."""
    items = list(items)
    if not _FILLER.sub("", _normal(query)):
        return items[:limit] if limit else items
    scored = [(score(it, query), i, it) for i, it in enumerate(items)]
    hits = sorted((s for s in scored if s[0] > 0), key=lambda t: (-t[0], t[1]))
    return [it for _, _, it in hits[:limit]]


def by_code(items: Sequence[ServiceItem]) -> dict[str, ServiceItem]:
    return {it.code: it for it in items}
