"""The catalogue of facts: every fact the rules and the model may read, with what it means.

Pure data, kept per topic beside the builders of :mod:`monitor.policy.facts`
(as OpenFisca gives each variable a label, an entity and a unit): a fact's
name, its entity (one value per household or per person), its unit, its
Chinese label, the source it is read from (besides the registry, on which
every fact rests) and the parameters it depends on. The builders are checked
against it (:func:`missing_or_unlisted`, in the tests), rule conditions are
checked against it when the rules are loaded (:func:`monitor.policy.rules.parse_rules`),
``monitor rules --facts`` prints it, and ``docs/facts.md`` is written from it.
"""

from __future__ import annotations

from dataclasses import dataclass

HOUSEHOLD, PERSON = "household", "person"
#: The source of the facts every source moves (the model's score reads them all).
EVERY_SOURCE = "every source"


@dataclass(frozen=True)
class Fact:
    """One fact: a column of the household or the person facts."""

    name: str
    entity: str
    unit: str
    label: str
    source: str = "registry"
    parameters: tuple[str, ...] = ()


def _topic(entity: str, source: str, rows: list[tuple], parameters: tuple[str, ...] = ()
           ) -> list[Fact]:
    """Facts of one topic: ``(name, unit, label[, parameters])`` rows."""
    return [Fact(name, entity, unit, label, source, extra[0] if extra else parameters)
            for name, unit, label, *extra in rows]


WORKING_AGE = ("working_age_from", "working_age_until")

PERSON_FACTS = [
    *_topic(PERSON, "registry", [
        ("id_number", "id", "身份证号（户籍）"), ("name", "text", "姓名"),
        ("household_id", "id", "户编号"), ("relation", "code", "与户主关系"),
        ("region_code", "code", "区划代码（村）"), ("county_code", "code", "区县代码"),
        ("township_code", "code", "乡镇（街道）代码"), ("status", "code", "人口状态"),
        ("status_date", "date", "状态变更日期"), ("birth_date", "date", "出生日期（据身份证号）"),
        ("sex", "code", "性别（据身份证号）"), ("age", "years", "年龄（周岁）"),
        ("is_living", "yes/no", "健在（人口状态正常）"), ("is_deceased", "yes/no", "已死亡"),
        ("is_child_of_head", "yes/no", "户主的子女"),
        ("age_at_death", "years", "死亡时年龄"),
    ]),
    *_topic(PERSON, "assistance", [
        ("person_in_dibao", "yes/no", "本人享受低保"),
        ("person_in_tekun", "yes/no", "本人享受特困供养"),
        ("person_in_edge", "yes/no", "本人为低保边缘对象"),
        ("person_in_temporary_aid", "yes/no", "本人享受临时救助"),
        ("has_living_subsidy", "yes/no", "领取困难残疾人生活补贴"),
        ("has_care_subsidy", "yes/no", "领取重度残疾人护理补贴"),
        ("has_orphan_support", "yes/no", "领取孤儿基本生活费"),
        ("has_unsupported_child_support", "yes/no", "领取事实无人抚养儿童生活补贴"),
        ("any_program_active", "yes/no", "有任一在享救助"),
        ("tekun_monthly_amount", "yuan/month", "特困供养月发放金额"),
    ]),
    *_topic(PERSON, "disability", [
        ("disability_type", "code", "残疾类别"), ("disability_level", "level 1-4", "残疾等级"),
        ("self_care", "code", "自理能力"), ("is_disabled", "yes/no", "持残疾人证"),
        ("is_intellectual_or_mental", "yes/no", "智力或精神残疾"),
        ("is_dependent", "yes/no", "失能或半失能"),
        ("is_severely_disabled", "yes/no", "重度残疾（等级不高于参数）",
         ("severe_disability_level",)),
    ]),
    *_topic(PERSON, "employment", [
        ("latest_employment_event", "code", "最近就业事件"),
        ("latest_employment_date", "date", "最近就业事件日期"),
        ("is_away_for_work", "yes/no", "外出务工（最近事件）"),
        ("is_unemployed", "yes/no", "失业登记（最近事件）"),
    ]),
    *_topic(PERSON, "education", [
        ("school_status", "code", "学籍状态（最近）"),
        ("school_status_date", "date", "学籍变动日期"),
        ("is_school_dropout", "yes/no", "辍学"),
    ]),
    *_topic(PERSON, "medical", [
        ("medical_out_of_pocket", "yuan", "统计期内个人自付医疗费用", ("medical_window_days",)),
        ("recent_medical_out_of_pocket", "yuan", "近期个人自付医疗费用",
         ("medical_window_days", "recent_window_days")),
        ("major_illness_claims", "count", "统计期内重特大疾病结算笔数", ("medical_window_days",)),
    ]),
]

HOUSEHOLD_FACTS = [
    *_topic(HOUSEHOLD, "registry", [
        ("region_code", "code", "区划代码（村）"), ("county_code", "code", "区县代码"),
        ("township_code", "code", "乡镇（街道）代码"), ("head_name", "text", "户主姓名"),
        ("head_id_number", "id", "户主身份证号"), ("head_sex", "code", "户主性别"),
        ("head_age", "years", "户主年龄"), ("members", "count", "户籍人数"),
        ("living_members", "count", "健在人数"),
        ("working_age_living", "count", "健在的劳动年龄人数", WORKING_AGE),
        ("head_couple_living", "count", "健在的户主及配偶人数"),
        ("working_age_deaths", "count", "近期劳动年龄成员死亡人数",
         ("sudden_window_days", *WORKING_AGE)),
        ("latest_working_age_death", "date", "最近一位劳动年龄成员死亡日期",
         ("sudden_window_days", *WORKING_AGE)),
    ]),
    *_topic(HOUSEHOLD, "assistance", [
        ("in_dibao", "yes/no", "低保户（有健在成员在享）"), ("in_tekun", "yes/no", "特困供养户"),
        ("in_edge", "yes/no", "低保边缘户"),
    ]),
    *_topic(HOUSEHOLD, "disability", [
        ("working_age_able", "count", "健在的劳动年龄且非重度残疾人数",
         (*WORKING_AGE, "severe_disability_level")),
    ]),
    *_topic(HOUSEHOLD, "employment", [
        ("working_age_at_home", "count", "在家的劳动年龄人数", WORKING_AGE),
        ("working_age_away", "count", "外出务工的劳动年龄人数", WORKING_AGE),
        ("working_age_unemployed", "count", "失业登记的劳动年龄人数", WORKING_AGE),
        ("head_couple_away", "count", "外出务工的户主及配偶人数"),
    ]),
    *_topic(HOUSEHOLD, "medical", [
        ("medical_out_of_pocket", "yuan", "统计期内家庭个人自付医疗费用", ("medical_window_days",)),
        ("recent_medical_out_of_pocket", "yuan", "近期家庭个人自付医疗费用",
         ("medical_window_days", "recent_window_days")),
        ("major_illness_claims", "count", "统计期内家庭重特大疾病结算笔数",
         ("medical_window_days",)),
    ]),
    *_topic(HOUSEHOLD, "income", [
        ("annual_income", "yuan/year", "家庭年收入（最近核算）"),
        ("employment_cost", "yuan/year", "必要就业成本"),
        ("income_assess_date", "date", "收入核算日期"),
        ("per_capita_income", "yuan/person/month", "家庭月人均收入（扣除就业成本）"),
    ]),
    *_topic(HOUSEHOLD, "disaster", [
        ("disaster_loss", "yuan", "近期受灾直接经济损失", ("sudden_window_days",)),
        ("latest_disaster_date", "date", "近期最近受灾日期", ("sudden_window_days",)),
    ]),
    *_topic(HOUSEHOLD, "assets", [
        ("vehicles", "count", "机动车数"), ("properties", "count", "商品房套数"),
        ("businesses", "count", "工商登记数"), ("financial_assets", "yuan", "金融资产合计"),
        ("financial_assets_per_capita", "yuan/person", "人均金融资产"),
    ]),
    *_topic(HOUSEHOLD, "housing", [
        ("housing_rating", "code", "农房安全鉴定等级（最近）"),
        ("housing_assess_date", "date", "农房鉴定日期"),
        ("housing_unsafe", "yes/no", "C级或D级危房"),
    ]),
    *_topic(HOUSEHOLD, "rural_revitalization", [
        ("revitalization_status", "code", "脱贫户或监测对象类型"),
        ("revitalization_since", "date", "认定日期"),
        ("is_monitored_for_relapse", "yes/no", "防返贫监测对象（风险未消除）"),
    ]),
    *_topic(HOUSEHOLD, EVERY_SOURCE, [
        ("risk_score", "score 0-100", "风险评分（模型）", ("model_threshold",)),
        ("risk_factors", "text", "风险评分的主要因素（模型）", ("model_threshold",)),
    ]),
]

#: Every fact, household facts then person facts.
CATALOGUE: tuple[Fact, ...] = (*HOUSEHOLD_FACTS, *PERSON_FACTS)


def fact_names(entity: str) -> frozenset[str]:
    """The names of the facts of one entity."""
    return frozenset(fact.name for fact in CATALOGUE if fact.entity == entity)


def facts_from_source() -> dict[str, frozenset[str]]:
    """The facts each source feeds, the registry's and every source's aside."""
    sources: dict[str, set[str]] = {}
    for fact in CATALOGUE:
        if fact.source not in ("registry", EVERY_SOURCE):
            sources.setdefault(fact.source, set()).add(fact.name)
    return {source: frozenset(names) for source, names in sources.items()}


def missing_or_unlisted(entity: str, columns: list[str]) -> tuple[list[str], list[str]]:
    """Catalogued facts a builder did not make, and columns it made that are not catalogued.

    The model's facts (from :data:`EVERY_SOURCE`) are not built with the
    others: the rules are given them beside the facts.
    """
    listed = frozenset(fact.name for fact in CATALOGUE
                       if fact.entity == entity and fact.source != EVERY_SOURCE)
    return sorted(listed - set(columns)), sorted(set(columns) - listed)
