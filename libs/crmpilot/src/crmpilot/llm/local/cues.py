"""Lexical cues in English and Russian (some German, French, Spanish): what rules look for.

Each cue kind is one compiled pattern; :func:`find` returns the matches with
their offsets so a caller can quote the sentence they occur in. The patterns
favour precision: a cue that fires must be worth showing as evidence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = ["CueKind", "Hit", "find", "first", "has"]

CueKind = Literal[
    "urgent",
    "outage",
    "legal",
    "anger",
    "positive",
    "negative",
    "request",
    "commitment",
    "deadline",
    "cancel",
    "payment",
    "question",
    "budget",
    "timeline",
    "decision_maker",
    "junk",
    "low_intent",
]

_WEEKDAY_EN = r"(?:mon|tues|wednes|thurs|fri|satur|sun)day"
_MONTH_EN = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_WEEKDAY_RU = r"(?:понедельник\w*|вторник\w*|сред[ыу]|четверг\w*|пятниц\w*|суббот\w*|воскресень\w*)"
_MONTH_RU = r"(?:январ|феврал|март|апрел|ма|июн|июл|август|сентябр|октябр|ноябр|декабр)[яеьа]"
_DATE_NUM = r"(?:\d{4}-\d{2}-\d{2}|\d{1,2}[./]\d{1,2}(?:[./]\d{2,4})?)"

_PATTERNS: dict[str, tuple[str, ...]] = {
    "urgent": (
        r"\burgent(?:ly)?\b|\basap\b|\bimmediately\b|\bemergency\b|\bright (?:now|away)\b|\bcritical(?:ly)?\b",
        r"\bas soon as possible\b|\btime[- ]sensitive\b|\bсрочн\w*|\bнемедленн\w*|\bкритичн\w*|\bэкстренн\w*",
        r"\bкак можно (?:скорее|быстрее)\b|\bdringend\w*|\bsofort\b|\burgent[e]?s?\b|\binmediat\w*",
        r"\bimmédiatement\b",
    ),
    "outage": (
        r"\boutage\b|\b(?:is|are|went|was|has been|have been|seems?) (?:completely |totally )?down\b",
        r"\bdown for (?:all|every(?:one|body)|hours)\b|\bnot working for (?:any|every)(?:one|body)\b",
        r"\bservice (?:is )?unavailable\b|\bproduction (?:is )?(?:down|broken)\b|\bsystem[- ]wide\b",
        r"\b(?:nobody|no one|none of (?:us|our \w+)) can\b",
        r"\ball (?:our |of our )?(?:users|customers|stores|staff) (?:are|can)|\bсбо[йяеи]\w*|\bавари\w*",
        r"\bупал[аио]?\b|\bлежит\b|\bникто не может\b|\bне работает у (?:всех|никого)\b",
        r"\b(?:сервис|сайт|система|сервер|приложение)\w* (?:полностью |снова )?(?:недоступ|не работа)\w*",
    ),
    "legal": (
        r"\blawyers?\b|\battorneys?\b|\bsolicitors?\b|\blegal (?:action|steps|proceedings)\b|\blawsuit\b",
        r"\bsu(?:e|ing)\b|\bcourt\b|\blitigation\b|\bsmall claims\b|\bregulator\b|\bombudsman\b",
        r"\bconsumer protection\b|\bюрист\w*|\bадвокат\w*|\bсуд(?:а|е|ом|ебн\w*)?\b|\bиск(?:а|ом|ов\w*)?\b",
        r"\bпрокуратур\w*|\bроспотребнадзор\w*|\bдосудебн\w*|\bпретензи\w*|\bAnwalt\b|\bavocat\b|\babogado\b",
    ),
    "anger": (
        r"\bunacceptable\b|\bridiculous\b|\boutrageous\b|\bdisgust\w*|\bdisgrace\w*|\bfurious\b|\bangry\b",
        r"\blivid\b|\bfed up\b|\bsick (?:and tired )?of\b|\bworst\b|\bterrible\b|\bhorrible\b|\bawful\b",
        r"\bpathetic\b|\bincompetent\b|\brage\b|\bscam\b|\brip[- ]?off\b|\bshame on you\b",
        r"\bwaste of (?:time|money)\b|!{2,}|\bбезобрази\w*|\bвозмутительн\w*|\bужасн\w*|\bотвратительн\w*",
        r"\bкошмар\w*|\bдостали\b|\bбардак\w*|\bхамств\w*|\bнахами\w*|\bярост\w*|\bв бешенстве\b|\bнадоел\w*",
        r"\bнедопустим\w*|\bпозор\w*|\bразвод\w*",
    ),
    "positive": (
        r"\bthank(?:s| you)\b|\bgreat\b|\bexcellent\b|\blove\b|\bawesome\b|\bappreciate\w*|\bperfect\b|\bhappy\b",
        r"\bpleased\b|\bhelpful\b|\bwell done\b|\bспасибо\b|\bблагодар\w*|\bотличн\w*|\bпрекрасн\w*|\bдоволь?н\w*",
        r"\bрад[аы]?\b|\bвосхитительн\w*|\bdanke\b|\bmerci\b|\bgracias\b",
    ),
    "negative": (
        r"\bunfortunately\b|\bdisappoint\w*|\bfrustrat\w*|\bannoy\w*|\bstill (?:not|no|haven't|hasn't|waiting)\b",
        r"\bunhappy\b|\bcomplain\w*|\bnever (?:received|arrived|got)\b|\bwrong\b|\bbroken\b|\bregret\w*|\blate\b",
        r"\blost\b|\bfailed\b|\bdeclined\b|\bк сожалению\b|\bразочаров\w*|\bдо сих пор\b|\bопять\b|\bснова\b",
        r"\bжалоб\w*|\bне доволен\b|\bнедоволен\b|\bтак и не\b|\bне пришл\w*|\bне работает\b",
    ),
    "request": (
        r"\bplease\b|\bpls\b|\bkindly\b|\b(?:could|can|would|will) you\b|\b(?:i|we) need\b|\bneed you to\b",
        r"\b(?:i|we)(?: would|'d) like\b|\b(?:i|we) want\b|\blet (?:me|us) know\b|\bmake sure\b|\bпрошу\b",
        r"\bпросим\b|\bпожалуйста\b|\bнужно\b|\bнеобходимо\b|\bнадо\b|\bне могли бы\b|\bможете ли\b|\bсообщите\b",
        r"\bпришлите\b|\bвышлите\b|\bотправьте\b|\bверните\b|\bотмените\b|\bпроверьте\b|\bподскажите\b",
        r"\bисправьте\b|\bпозвоните\b|\bbitte\b|\bs'il vous pla[iî]t\b|\bpor favor\b",
    ),
    "commitment": (
        r"\b(?:i|we) will\b|\b(?:i|we)'ll\b|\b(?:i'm|i am|we're|we are) going to\b|\b(?:i|we) shall\b",
        r"\b(?:я|мы) (?:вышл|пришл|отправ|оплат|перезвон|подготов|сдела|предостав|верн|подпиш)\w*",
        r"\b(?:я|мы) (?:обязательно )?(?:будем|буду)\b",
    ),
    "deadline": (
        r"\b(?:by|before|until|till|no later than|due)\s+(?:the\s+)?(?:end of (?:the )?(?:day|week|month|year)|eod",
        rf"tomorrow|today|tonight|next {_WEEKDAY_EN}|next week|{_WEEKDAY_EN}|{_DATE_NUM}",
        rf"\d{{1,2}}(?:st|nd|rd|th)?(?: of)? {_MONTH_EN}\b(?: \d{{4}})?",
        rf"{_MONTH_EN}\b \d{{1,2}}(?:st|nd|rd|th)?(?:,? \d{{4}})?)",
        rf"\b(?:до|к)\s+(?:конца (?:дня|недели|месяца|года)|завтра\w*|{_WEEKDAY_RU}|{_DATE_NUM}",
        rf"\d{{1,2}} {_MONTH_RU})\b",
    ),
    "cancel": (
        r"\bcancel\w*|\bunsubscrib\w*|\bterminat\w*|\bclose my account\b",
        r"\bstop (?:the|my) (?:service|subscription)\b|\bотмен\w*|\bотказ\w*|\bрасторг\w*|\bрасторж\w*",
        r"\bзакрыть (?:мой |свой )?(?:аккаунт|счет|счёт)\b|\bотпис\w*",
    ),
    "payment": (
        r"\binvoice\w*|\bpayment\w*|\bpay\b|\bpaid\b|\bcharge[ds]?\b|\bbilling\b|\brefund\w*|\breceipt\b",
        r"\bоплат\w*|\bсч[её]т(?:а|у|е|ом)?\b|\bплат[её]ж\w*|\bсписа\w*|\bвозврат\w*|\bденьг\w*|\bквитанц\w*",
    ),
    "question": (
        r"\?|\b(?:how|what|when|where|why|which|is it possible|do you|does it|can i)\b",
        r"\b(?:как|что|когда|где|почему|какой|какие|можно ли|есть ли)\b",
    ),
    "budget": (r"\bbudget\w*|\bбюджет\w*|\bwe (?:can|are able to) (?:spend|invest)\b",),
    "timeline": (
        r"\b(?:this|next) (?:week|month|quarter|year)\b|\bQ[1-4]\b",
        r"\bwithin (?:\d+|a|one|two|three|a few|few) (?:days?|weeks?|months?)\b|\bby (?:the )?end of\b",
        rf"\bgo[- ]live\b|\bdeadline\b|\blaunch\w* (?:in|on|by)\b|\bby {_MONTH_EN}\b",
        r"\b(?:в|на) (?:этом|следующем|текущем) (?:месяце|квартале|году)\b|\bдо конца (?:месяца|квартала|года)\b",
        r"\bв течение \w+ (?:дн\w+|недел\w+|месяц\w*)\b|\bсрок\w*|\bдедлайн\w*|\bзапуск\w*",
    ),
    "decision_maker": (
        r"\b(?:CEO|CTO|CFO|COO|CIO|CMO|VP|founder|co-founder|managing director|head of \w+|director of \w+",
        r"procurement|purchasing manager|decision[- ]maker|I (?:can )?sign off|I approve)\b",
        r"\bгенеральн\w* директор\w*|\bдиректор\w*|\bруководител\w+|\bвладел\w+ (?:компании|бизнеса)",
        r"\bоснователь\w*|\bотдел\w* закупок\b|\bпринима\w+ решени\w+",
    ),
    "junk": (
        r"\bstudents?\b|\bthesis\b|\bhomework\b|\bassignment\b|\b(?:university|school|class) project\b",
        r"\bjust testing\b|\bthis is a test\b|\btest (?:submission|request|form|lead)\b|\basdf\w*|\bqwerty\b",
        r"\blorem ipsum\b|\bseo (?:services|agency|offer)\b|\bbacklinks?\b|\bcasino\b",
        r"\bcrypto\w* (?:investment|offer)\b|\bguest post\w*\b|\bстудент\w*|\bкурсов\w+ работ\w*",
        r"\bдипломн\w+ работ\w*|\bэто тест\w*\b|\bтестов\w+ заявк\w*|\bпродвижени\w+ сайт\w*|\bреклам\w+ услуг\w*",
    ),
    "low_intent": (
        r"\bjust (?:curious|browsing|looking)\b|\bno budget\b|\bnot sure (?:yet|if)\b|\bmaybe (?:next|later)\b",
        r"\bsomeday\b|\bno rush\b|\bпросто интересно\b|\bнет бюджета\b|\bпока не\b|\bкогда-нибудь\b",
    ),
}

_COMPILED: dict[str, re.Pattern[str]] = {
    kind: re.compile("|".join(parts), re.IGNORECASE) for kind, parts in _PATTERNS.items()
}


@dataclass(frozen=True, slots=True)
class Hit:
    kind: CueKind
    start: int
    end: int
    text: str


def find(kind: CueKind, text: str) -> list[Hit]:
    """Every match of cue ``kind`` in ``text``, with offsets."""
    return [Hit(kind, m.start(), m.end(), m.group()) for m in _COMPILED[kind].finditer(text)]


def first(kind: CueKind, text: str) -> Hit | None:
    m = _COMPILED[kind].search(text)
    return Hit(kind, m.start(), m.end(), m.group()) if m else None


def has(kind: CueKind, text: str) -> bool:
    return _COMPILED[kind].search(text) is not None
